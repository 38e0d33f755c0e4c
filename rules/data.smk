# Data stages: acquire -> ingest -> splits -> canonicalize -> augment -> cache.
# (placeholder until the data stages land)
