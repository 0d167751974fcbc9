"""One random geometric warp per image: flips, rotation, shift and shear in a single pass.

The study's ``ImageDataGenerator`` composed its random transforms into one affine map
per image and resampled each image once. A chain of Keras layers (two flips, rotation,
translation, shear) instead resamples every batch five times, interpolating three of
them: about five times slower at 250 px, and each bilinear pass blurs the cell a little
more. :class:`RandomWarp` draws the same five transforms, composes them into one matrix
per image (:func:`warp_matrices`) and applies it with one bilinear
``ImageProjectiveTransformV3``.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

FILL_MODES = ("reflect", "constant", "nearest", "wrap")

#: Uniform draws per image: flip x, flip y, angle, shift x, shift y, shear x, shear y.
DRAWS = 7


def warp_matrices(u, height, width, rotation_deg: float = 180.0, translate: float = 0.25,
                  shear: float = 0.2, flip: bool = True) -> tf.Tensor:
    """(n, 8) ``ImageProjectiveTransformV3`` rows from (n, 7) uniforms in [0, 1).

    Each image is, in this order, mirrored left-right and/or top-bottom (each with
    probability 1/2), rotated about its centre by up to +-``rotation_deg``, shifted by up
    to +-``translate`` of its width and height, and sheared by up to +-``shear`` along
    each axis. The rows map every *output* pixel (column, row) back to the input point
    it samples, which is the inverse of that forward chain.
    """
    u = tf.convert_to_tensor(u, tf.float32)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    ones = tf.ones_like(u[:, 0])

    def spread(col, half_range):
        return (2.0 * u[:, col] - 1.0) * half_range

    fx = tf.where(u[:, 0] < 0.5, -ones, ones) if flip else ones
    fy = tf.where(u[:, 1] < 0.5, -ones, ones) if flip else ones
    theta = spread(2, math.radians(rotation_deg))
    tx, ty = spread(3, translate * w), spread(4, translate * h)
    sx, sy = spread(5, shear), spread(6, shear)

    # Inverse of: flip, rotate by theta, shift by t, shear [[1, sx], [sy, 1]].
    det = 1.0 - sx * sy
    s00, s01, s10, s11 = 1.0 / det, -sx / det, -sy / det, 1.0 / det  # shear^-1
    cos, sin = tf.cos(theta), tf.sin(theta)
    r00, r01, r10, r11 = cos, sin, -sin, cos  # rotation by -theta
    a00 = fx * (r00 * s00 + r01 * s10)
    a01 = fx * (r00 * s01 + r01 * s11)
    a10 = fy * (r10 * s00 + r11 * s10)
    a11 = fy * (r10 * s01 + r11 * s11)
    b0 = -fx * (r00 * tx + r01 * ty)
    b1 = -fy * (r10 * tx + r11 * ty)
    # The chain acts on coordinates centred on the image; rows take pixel coordinates.
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    zeros = tf.zeros_like(a00)
    return tf.stack([a00, a01, b0 + cx - a00 * cx - a01 * cy,
                     a10, a11, b1 + cy - a10 * cx - a11 * cy,
                     zeros, zeros], axis=1)


def apply_warp(images, matrices, fill_mode: str = "reflect") -> tf.Tensor:
    """Resample a batch (n, h, w, c) once, bilinearly, through per-image ``matrices``."""
    images = tf.convert_to_tensor(images)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(matrices, tf.float32), output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode=_checked(fill_mode).upper())


def _checked(fill_mode: str) -> str:
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}; got {fill_mode!r}")
    return fill_mode


class RandomWarp(keras.layers.Layer):
    """Training-time random flips, rotation, shift and shear as one resampling per image.

    Draws come from a seeded Keras ``SeedGenerator``, so two layers built with the same
    seed transform the same sequence of batches identically. Outside training it
    returns its input unchanged. Float images are resampled as they are; uint8 images
    (the input pipeline's) are resampled in float32 and rounded back to uint8.
    """

    def __init__(self, rotation_deg: float = 180.0, translate: float = 0.25, shear: float = 0.2,
                 flip: bool = True, fill_mode: str = "reflect", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rotation_deg, self.translate, self.shear = float(rotation_deg), float(translate), float(shear)
        self.flip, self.fill_mode, self.seed = bool(flip), _checked(fill_mode), int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, images, training=True):
        if not training:
            return images
        images = tf.convert_to_tensor(images)
        shape = tf.shape(images)
        u = keras.random.uniform((shape[0], DRAWS), seed=self.seed_generator)
        matrices = warp_matrices(u, shape[1], shape[2], self.rotation_deg, self.translate,
                                 self.shear, self.flip)
        if images.dtype != tf.uint8:
            return apply_warp(images, matrices, self.fill_mode)
        out = apply_warp(tf.cast(images, tf.float32), matrices, self.fill_mode)
        return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation_deg": self.rotation_deg, "translate": self.translate,
                "shear": self.shear, "flip": self.flip, "fill_mode": self.fill_mode, "seed": self.seed}
