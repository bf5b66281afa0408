-- The account Grafana's "tasks and people" dashboard reads the database with. Its grants come
-- after the migrations (the compose service grafana-grants): only the columns the dashboard
-- reads, never password hashes or notification texts.
CREATE USER IF NOT EXISTS 'grafana'@'%' IDENTIFIED BY 'grafana-readonly';
