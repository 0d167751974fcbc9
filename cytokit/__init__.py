"""cytokit: the helper package behind the bone-marrow cytology book, one subpackage per stage.

``data`` (tree -> checked, split manifest -> tf.data) -> ``models`` (network, training,
augmentation, search) -> ``evaluation`` (predictions -> metrics with intervals) ->
``xai`` (superpixels, LIME, sufficiency) -> ``book`` (chapters, figures, runner, build).
Importing the package stays cheap: TensorFlow is loaded only by the modules that need it.
"""

__version__ = "0.1.0"
