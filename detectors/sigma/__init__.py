"""A native Sigma engine: pySigma parses the rules, we compile them to predicates over ECS documents."""
