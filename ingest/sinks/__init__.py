"""Where normalized events and dead letters go: Elasticsearch or Kafka in production, DuckDB or files embedded."""
