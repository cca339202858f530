"""Statistics a sweep report decides with: confidence intervals, paired significance, compute frontiers."""
