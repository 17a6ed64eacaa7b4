"""Sample data sets for demos, tests and benchmarks."""
