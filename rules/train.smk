# Training rules. (placeholder until training lands)
