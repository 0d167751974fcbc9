"""Synthetic bone-marrow cells in the real dataset's layout: the book's embedded default data.

One May-Grünwald-Giemsa-looking 250 px field per image, the labelled cell near the
centre, written as ``CLASS/0001-1000/CLASS_00001.jpg`` like the real tree. Colour is
shared by every class and jittered per image, and the neutrophil series is one continuous
maturation, so colour alone does not tell the classes apart (:mod:`.morphology`). Each
image is a pure function of (code, index, seed, size, difficulty), so its cell and
nucleus masks can be regenerated from ``SYNTH.json`` alone.
"""

from cytokit.data.synthetic.layout import class_counts, relpath
from cytokit.data.synthetic.scene import SynthCell, render
from cytokit.data.synthetic.writer import META_FILE, encode, generate, main_synth, masks, read_meta

__all__ = ["META_FILE", "SynthCell", "class_counts", "encode", "generate", "main_synth", "masks",
           "read_meta", "relpath", "render"]
