-- Cash files: each file's text is kept as one row (issue #20, decided by the finance data owners).
--
-- Payments and suspense rows are COPYed straight from the validated records; the raw lines stay
-- queryable by (file_id, line_no) through the view ifs.cashfile_line, which has the columns and
-- the line numbers the table of that name had (blank lines, which the import ignores, are not
-- rows of the view). One row per file instead of one per line made a 1,000,000-line file's
-- import cost a bare COPY of its rows plus one 57 MB value (bench/cashfile.py).
CREATE TABLE ifs.cashfile_text (
    file_id  bigint PRIMARY KEY,
    body     text   COMPRESSION lz4 NOT NULL  -- lz4: see bench/cashfile.py
);

-- The lines loaded before this migration become their file's text, each at its own line number
-- (the gaps the old table had for blank lines become empty lines again).
INSERT INTO ifs.cashfile_text (file_id, body)
SELECT f.file_id, string_agg(coalesce(l.raw, ''), E'\n' ORDER BY n.line_no) || E'\n'
  FROM (SELECT file_id, max(line_no) AS last FROM ifs.cashfile_line GROUP BY file_id) f
 CROSS JOIN LATERAL generate_series(1, f.last) AS n(line_no)
  LEFT JOIN ifs.cashfile_line l ON l.file_id = f.file_id AND l.line_no = n.line_no
 GROUP BY f.file_id;

DROP TABLE ifs.cashfile_line;

-- Line n is the text between the (n-1)th and the nth newline, its CR dropped, as the reader
-- numbers lines (a file split on LF; CRLF and LF both read).
CREATE VIEW ifs.cashfile_line AS
SELECT t.file_id, l.line_no::integer AS line_no, rtrim(l.raw, E'\r') AS raw
  FROM ifs.cashfile_text t
 CROSS JOIN LATERAL regexp_split_to_table(t.body, E'\n') WITH ORDINALITY AS l(raw, line_no)
 WHERE l.raw !~ '^\s*$';

COMMENT ON VIEW ifs.cashfile_line IS
    'The raw lines of every imported cash file by (file_id, line_no); blank lines are not rows.';
