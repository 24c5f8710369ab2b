-- Measurement values as json (their text, checked on the way in) instead of jsonb.
-- Every page of the REST API sends 64 of them: jsonb would be converted back to text
-- for each, which cost PostgreSQL a third of its time on that route, and parsing
-- into jsonb costs ingest more than checking the text does. No query looks inside a
-- value except the hourly averages, which json_each_text serves as well.
ALTER TABLE measurement ALTER COLUMN value TYPE json USING value::json;
