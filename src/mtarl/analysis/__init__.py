"""The analysis stage's library: cell estimates, the paper's tables, predictions, figures and the static page."""
