"""Stage 3, evaluation: predictions become metrics, and metrics comparisons with their uncertainty."""
