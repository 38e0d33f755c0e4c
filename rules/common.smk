# Functions only: config validation and the paths and params of the data stages.
# (owned by the data stages; placeholder until they land)
