"""Synthetic bone-marrow cells in the real dataset's layout: the book's embedded default data.

One May-Grünwald-Giemsa-looking 250 px field per image, the labelled cell near the
centre, written as ``CLASS/0001-1000/CLASS_00001.jpg`` like the real tree. Each class's
shapes are drawn from its morphology (:mod:`.morphology`); sizes, stain colours, textures,
crowding, blur and JPEG quality are fitted to a real sample's calibration half
(:mod:`.calibration`, :mod:`.fitted`), so colour tells classes apart about as much as it
does on real smears. Each image is a pure function of (code, index, seed, size, difficulty), so its cell and
nucleus masks can be regenerated from ``SYNTH.json`` alone.
"""

from cytokit.data.synthetic.layout import class_counts, relpath
from cytokit.data.synthetic.scene import SynthCell, render
from cytokit.data.synthetic.writer import META_FILE, VERSION, encode, generate, main_synth, masks, read_meta

__all__ = ["META_FILE", "VERSION", "SynthCell", "class_counts", "encode", "generate", "main_synth", "masks",
           "read_meta", "relpath", "render"]
