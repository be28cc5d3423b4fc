-- The bank calendar knows which years it holds, and refuses any other.
--
-- Before this, pay.is_business_day fell back to Monday–Friday for a day not in pay.calendar, so from
-- 2027-01-01 (a holiday) every holiday would have been a business day. Now a year is either loaded
-- (pay.calendar_year) or an error that names the day and the command that loads its year
-- (python -m finflows.flows.banking.business_days load YEAR; see that module).
CREATE TABLE pay.calendar_year (
    year       integer     PRIMARY KEY CHECK (year BETWEEN 2000 AND 2200),
    source     text        NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);

-- where each row came from; 'manual' rows (a clearing-house announcement) survive a reload
ALTER TABLE pay.calendar ADD COLUMN source text NOT NULL DEFAULT 'manual';
UPDATE pay.calendar SET source = 'DGPA 115 (2026), migration 0006' WHERE day BETWEEN '2026-01-01' AND '2026-12-31';
ALTER TABLE pay.calendar ALTER COLUMN source DROP DEFAULT;

INSERT INTO pay.calendar_year (year, source) VALUES
    (2026, 'DGPA 115 (2026), migration 0006'),
    (2027, 'holidays 0.108: TW (DGPA office calendar 116), migration 0012');

-- 2027 (ROC 116), as DGPA published it and the holidays package has it (tests/formats/test_calendar.py
-- compares both); no make-up working Saturday this year.
INSERT INTO pay.calendar (day, is_business, name, source)
SELECT v.day::date, v.is_business, v.name, 'holidays 0.108: TW (DGPA office calendar 116), migration 0012'
FROM (VALUES
    ('2027-01-01', false, 'Founding Day of the Republic of China'),
    ('2027-02-04', false, 'Chinese New Year''s Eve'),
    ('2027-02-05', false, 'Chinese New Year''s Eve'),
    ('2027-02-08', false, 'Chinese New Year'),
    ('2027-02-09', false, 'Chinese New Year (observed)'),
    ('2027-02-10', false, 'Chinese New Year (observed)'),
    ('2027-03-01', false, 'Peace Memorial Day (observed)'),
    ('2027-04-05', false, 'Tomb-Sweeping Day'),
    ('2027-04-06', false, 'Children''s Day (observed)'),
    ('2027-04-30', false, 'Labor Day (observed)'),
    ('2027-06-09', false, 'Dragon Boat Festival'),
    ('2027-09-15', false, 'Mid-Autumn Festival'),
    ('2027-09-28', false, 'Confucius'' Birthday'),
    ('2027-10-11', false, 'National Day (observed)'),
    ('2027-10-25', false, 'Taiwan Restoration and Guningtou Victory Memorial Day'),
    ('2027-12-24', false, 'Constitution Day (observed)'),
    ('2027-12-31', false, 'Founding Day of the Republic of China (observed)')
) AS v(day, is_business, name);

CREATE OR REPLACE FUNCTION pay.is_business_day(d date) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    listed boolean;
BEGIN
    IF d IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pay.calendar_year y WHERE y.year = extract(year FROM d)::int) THEN
        RAISE EXCEPTION 'no bank calendar is loaded for % (year %): a business day cannot be told', d,
            extract(year FROM d)::int
            USING ERRCODE = 'FFC01',
                  HINT = format('load it with: python -m finflows.flows.banking.business_days load %s',
                                extract(year FROM d)::int);
    END IF;
    SELECT c.is_business INTO listed FROM pay.calendar c WHERE c.day = d;
    RETURN coalesce(listed, extract(isodow FROM d) < 6);
END $$;

-- Day by day, so that an answer inside the loaded years never depends on a year that is not loaded,
-- and a search that walks out of them fails by name.
CREATE OR REPLACE FUNCTION pay.next_business_day(d date) RETURNS date LANGUAGE plpgsql STABLE AS $$
DECLARE
    x date := d + 1;
BEGIN
    WHILE NOT pay.is_business_day(x) LOOP
        x := x + 1;
        IF x > d + 60 THEN
            RAISE EXCEPTION 'no business day within 60 days after %', d USING ERRCODE = 'FFC02';
        END IF;
    END LOOP;
    RETURN x;
END $$;

CREATE OR REPLACE FUNCTION pay.previous_business_day(d date) RETURNS date LANGUAGE plpgsql STABLE AS $$
DECLARE
    x date := d - 1;
BEGIN
    WHILE NOT pay.is_business_day(x) LOOP
        x := x - 1;
        IF x < d - 60 THEN
            RAISE EXCEPTION 'no business day within 60 days before %', d USING ERRCODE = 'FFC02';
        END IF;
    END LOOP;
    RETURN x;
END $$;
