INSERT INTO raw_commands (id, stream, payload) VALUES ($1, $2, $3)
