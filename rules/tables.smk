# Table rules. (placeholder until tables land)
