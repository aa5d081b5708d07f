"""The Faust stream app: stage 1 folds raw events into per-partition window partials, stage 2 merges
them, scores final windows and publishes alerts. See ``docs/stream.md``."""
