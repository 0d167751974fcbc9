"""Stage 4, explainable AI: superpixels, LIME, and the tests of whether an explanation suffices."""
