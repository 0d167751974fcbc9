"""Stage 2, the models: the study's network, its training, augmentation and random search.

Every module here loads TensorFlow or Keras; import the one a chapter needs.
"""
