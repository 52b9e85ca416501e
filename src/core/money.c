#include "autoconf.h"

#include "core/money.h"

#include <stdlib.h>
#include <string.h>

/* ISO 4217 codes of currencies in circulation (2024 list), sorted for
 * bsearch. */
static const char *const currencies[] = {
	"aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn",
	"bam", "bbd", "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl",
	"bsd", "btn", "bwp", "byn", "bzd", "cad", "cdf", "chf", "clp", "cny",
	"cop", "crc", "cup", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
	"ern", "etb", "eur", "fjd", "fkp", "gbp", "gel", "ghs", "gip", "gmd",
	"gnf", "gtq", "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr",
	"iqd", "irr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
	"kpw", "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl",
	"lyd", "mad", "mdl", "mga", "mkd", "mmk", "mnt", "mop", "mru", "mur",
	"mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok", "npr",
	"nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar",
	"ron", "rsd", "rub", "rwf", "sar", "sbd", "scr", "sdg", "sek", "sgd",
	"shp", "sle", "sll", "sos", "srd", "ssp", "stn", "svc", "syp", "szl",
	"thb", "tjs", "tmt", "tnd", "top", "try", "ttd", "twd", "tzs", "uah",
	"ugx", "usd", "uyu", "uzs", "ves", "vnd", "vuv", "wst", "xaf", "xcd",
	"xcg", "xof", "xpf", "yer", "zar", "zmw", "zwg",
};

static int cmp_code(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

bool money_currency_valid(const char *code)
{
	if (code == NULL || strlen(code) != 3)
		return false;
	return bsearch(code, currencies, sizeof currencies / sizeof currencies[0],
	    sizeof currencies[0], cmp_code) != NULL;
}

long long money_platform_fee(long long amount_cents, int bps)
{
	return amount_cents * bps / 10000;
}
