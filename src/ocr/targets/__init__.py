"""DB targets: probability (shrink) map, threshold (border) map and their masks."""
