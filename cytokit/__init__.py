"""cytokit: the helper package behind the bone-marrow cytology book.

Each chapter notebook imports one module of it per concern (``cytokit.data``,
``cytokit.synth``, ``cytokit.plots`` ...). Importing the package itself stays cheap:
TensorFlow is only loaded by the modules that need it.
"""

__version__ = "0.1.0"
