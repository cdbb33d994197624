"""The review-pipeline layer: the project file (defcheck.yaml), expectations and baselines."""
