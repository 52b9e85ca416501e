-- How many events each user owns, kept by statement triggers in the
-- transaction that adds or removes events: an owner's list reads its total
-- from this one row instead of counting the owner's events on every page,
-- and, written in the same transaction as the rows, it is the count of the
-- very snapshot the page is read from (API.md: a list's total).
ALTER TABLE users ADD COLUMN event_count bigint NOT NULL DEFAULT 0
    CHECK (event_count >= 0);

CREATE FUNCTION events_count_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET event_count = u.event_count + n.c
    FROM (SELECT owner_id, count(*) AS c FROM added GROUP BY owner_id) n
    WHERE u.id = n.owner_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION events_count_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET event_count = u.event_count - o.c
    FROM (SELECT owner_id, count(*) AS c FROM removed GROUP BY owner_id) o
    WHERE u.id = o.owner_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION events_count_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET event_count = 0 WHERE event_count <> 0;
    RETURN NULL;
END
$$;

-- An event never changes hands; were one to, its count would move with it.
CREATE FUNCTION events_owner_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an event''s owner_id does not change' USING ERRCODE = '55000';
END
$$;

CREATE TRIGGER events_count_added AFTER INSERT ON events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION events_count_added();
CREATE TRIGGER events_count_removed AFTER DELETE ON events
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION events_count_removed();
CREATE TRIGGER events_count_truncated AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_count_truncated();
CREATE TRIGGER events_owner_fixed BEFORE UPDATE OF owner_id ON events
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION events_owner_fixed();

UPDATE users u SET event_count = n.c
FROM (SELECT owner_id, count(*) AS c FROM events GROUP BY owner_id) n
WHERE u.id = n.owner_id;
