-- The per-email limiter counts an address the way the accounts are matched:
-- lower() of the database, not a lower-casing of its own that differs on
-- letters outside ASCII (with which one address made many buckets). The
-- application sends 'auth-email:' and the address; the database lowers and
-- hashes it, so the table need not hold every address tried. Every other
-- key is kept as it is sent.
CREATE FUNCTION gala_rate_key(p_key text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN starts_with(p_key, 'auth-email:')
           THEN 'auth-email:' || encode(sha256(convert_to(lower(substr(p_key, 12)), 'UTF8')), 'hex')
           ELSE p_key END
$$;
