"""Results tables (and, next, reports) built from run folders' summary.json files."""
