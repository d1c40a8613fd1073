"""Keras layers of the price head: the exponent to a price, the wide/deep blend, the members' mean."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="price")
class ExpPrice(keras.layers.Layer):
    """Log price -> price, the exported signature's output."""

    def call(self, x):
        return tf.exp(tf.reshape(x, (-1,)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)


@keras.saving.register_keras_serializable(package="price")
class WideDeepBlend(keras.layers.Layer):
    """[deep log price, wide terms] -> the model's log price.

    The wide path is Ridge solved in closed form and frozen (training/wide.py); the deep network
    predicts the whole log price on its own. While training, the layer passes the deep estimate
    through, so the network learns the price itself rather than the linear model's residual (on
    7.6k Myntra rows it overfitted the residual's noise); in inference (validation, evaluation,
    serving) it returns `(1 - w) * (wide + intercept) + w * deep`, an ensemble of two different
    learners. `w` and the intercept are set after the Ridge solve and are not trained.
    """

    def __init__(self, deep_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.initial_weight = float(deep_weight)

    def build(self, input_shape):
        self.intercept = self.add_weight(shape=(), initializer="zeros", trainable=False, name="intercept")
        self.deep_weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_weight), trainable=False, name="deep_weight"
        )

    def call(self, inputs, training=None):
        deep, wide = inputs
        if training:
            return deep
        return (1.0 - self.deep_weight) * (wide + self.intercept) + self.deep_weight * deep

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "deep_weight": self.initial_weight}


@keras.saving.register_keras_serializable(package="price")
class MemberMean(keras.layers.Layer):
    """[batch, k] estimates of k independently trained members -> their mean, [batch, 1].

    While training the layer passes the k estimates through: the squared error is taken against
    each member on its own (the label broadcasts over the k columns), so no member learns to make
    up for another and their errors stay as different as their initialisations made them; in
    inference (validation, evaluation, serving) it returns their mean, an ensemble inside the model.
    """

    def call(self, x, training=None):
        if training:
            return x
        return tf.reduce_mean(x, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


GROUP_ORDER = ("metadata", "text", "image")


@keras.saving.register_keras_serializable(package="price")
class GroupsGiven(keras.layers.Layer):
    """The raw inputs -> which input groups a listing gives, float [batch, 3] (metadata, text, image).

    Metadata: a category that is not "" or a finite number; text: a text that is not ""; the photo:
    one slot at least (the photo mask). A group the model does not have is 0. The training input
    pipeline's `groups_given` applies the same rule to one example.
    """

    def __init__(self, categorical=(), numeric=(), text=(), mask=None, **kwargs):
        super().__init__(**kwargs)
        self.categorical, self.numeric, self.text, self.mask = list(categorical), list(numeric), list(text), mask

    def call(self, inputs):
        any_of = []
        meta = [tf.not_equal(tf.reshape(inputs[c], (-1,)), "") for c in self.categorical]
        meta += [tf.math.is_finite(tf.reshape(tf.cast(inputs[c], tf.float32), (-1,))) for c in self.numeric]
        text = [tf.not_equal(tf.reshape(inputs[c], (-1,)), "") for c in self.text]
        photo = [tf.reduce_any(inputs[self.mask] > 0, axis=-1)] if self.mask else []
        batch = tf.shape(next(iter(inputs.values())))[0]
        for group in (meta, text, photo):
            any_of.append(tf.reduce_any(tf.stack(group, axis=-1), axis=-1) if group else tf.zeros([batch], tf.bool))
        return tf.cast(tf.stack(any_of, axis=-1), tf.float32)

    def compute_output_shape(self, input_shape):
        return (None, 3)

    def get_config(self):
        return {
            **super().get_config(),
            "categorical": self.categorical,
            "numeric": self.numeric,
            "text": self.text,
            "mask": self.mask,
        }


@keras.saving.register_keras_serializable(package="price")
class MaskedMean(keras.layers.Layer):
    """[x [batch, slots, d], mask [batch, slots]] -> the mean of the filled slots, [batch, d] (0: none)."""

    def call(self, inputs):
        x, mask = inputs
        mask = tf.cast(mask, x.dtype)[:, :, None]
        return tf.reduce_sum(x * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])


@keras.saving.register_keras_serializable(package="price")
class Absent(keras.layers.Layer):
    """[x [batch, d], given [batch, 1]] -> x where the input is given, a learnt 'absent' vector where not.

    A missing photo is then a value of its own, not a fill value (an all-black photo) that is also real.
    """

    def build(self, input_shape):
        self.absent = self.add_weight(shape=(input_shape[0][-1],), initializer="zeros", name="absent")

    def call(self, inputs):
        x, given = inputs
        given = tf.cast(given, x.dtype)
        return x * given + (1.0 - given) * self.absent

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="price")
class PresentOnly(keras.layers.Layer):
    """[x [batch, slots, ...], mask [batch, slots]] -> `inner` applied to the filled slots only,
    scattered back to [batch, slots, ...out] with zeros in the empty ones.

    A listing's photos go through the photo network (decoding, the backbone) as one flat batch of
    the photos that are there: four slots cost no more than the photos given.
    """

    def __init__(self, inner, out_dtype: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.out_dtype = out_dtype

    def call(self, inputs, training=None):
        x, mask = inputs
        where = tf.where(tf.cast(mask, tf.bool))
        flat = tf.gather_nd(x, where)
        width = self.inner.compute_output_shape((None, *x.shape[2:]))[1:]
        # no photo in the whole batch: the network is not run (a convolution over 0 rows misbehaves)
        out = tf.cond(
            tf.shape(flat)[0] > 0,
            lambda: tf.cast(self.inner(flat, training=training), self.out_dtype),
            lambda: tf.zeros((0, *width), self.out_dtype),
        )
        shape = tf.concat([tf.shape(mask, out_type=tf.int64), tf.shape(out, out_type=tf.int64)[1:]], axis=0)
        return tf.scatter_nd(where, out, shape)

    def compute_output_shape(self, input_shape):
        inner = self.inner.compute_output_shape((None, *input_shape[0][2:]))
        return (input_shape[0][0], input_shape[0][1], *inner[1:])

    def get_config(self):
        return {
            **super().get_config(),
            "inner": keras.saving.serialize_keras_object(self.inner),
            "out_dtype": self.out_dtype,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)


PATTERNS = ("metadata+text", "metadata", "text")  # the wide path's patterns, in its weights' order


@keras.saving.register_keras_serializable(package="price")
class SubsetWide(keras.layers.Layer):
    """The wide path for the groups a listing gives: [given, full, metadata_alone, text_alone].

    Ridge is solved once per pattern of given groups (training/fit/wide.py): with metadata and text
    the full terms, with one of them its own Ridge's terms; each pattern has its intercept, and a
    listing with neither gets the training mean (`intercepts[3]`). Returns [batch, 2]: the wide log
    price and 1.0 where a pattern has one (0.0: neither group given).
    """

    def __init__(self, groups=("metadata", "text"), **kwargs):
        super().__init__(**kwargs)
        self.groups = list(groups)

    def build(self, input_shape):
        self.intercepts = self.add_weight(shape=(4,), initializer="zeros", trainable=False, name="intercepts")

    def call(self, inputs):
        given, full, meta_alone, text_alone = inputs
        b = self.intercepts
        m = given[:, 0:1] > 0 if "metadata" in self.groups else tf.zeros_like(given[:, 0:1], tf.bool)
        t = given[:, 1:2] > 0 if "text" in self.groups else tf.zeros_like(given[:, 1:2], tf.bool)
        if len(self.groups) == 1:  # one wide group: its terms are the whole wide path
            wide = tf.where(m | t, full + b[0], b[3])
        else:
            wide = tf.where(m & t, full + b[0], tf.where(m, meta_alone + b[1], tf.where(t, text_alone + b[2], b[3])))
        return tf.concat([wide, tf.cast(m | t, wide.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 2)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="price")
class SubsetBlend(keras.layers.Layer):
    """[deep log price, SubsetWide's [wide, has_wide], given] -> the log price, blended per subset.

    Training: the deep estimate (as WideDeepBlend). Inference: (1 - w_s) * wide + w_s * deep, with
    w_s the deep weight of the listing's subset of given groups (8 of them, indexed
    4 * metadata + 2 * text + image), chosen on the valid split; deep alone without a wide pattern.
    """

    def __init__(self, deep_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.initial_weight = float(deep_weight)

    def build(self, input_shape):
        self.deep_weights = self.add_weight(
            shape=(8,),
            initializer=keras.initializers.Constant(self.initial_weight),
            trainable=False,
            name="deep_weights",
        )

    def call(self, inputs, training=None):
        deep, wide, given = inputs
        if training:
            return deep
        index = tf.cast(tf.round(given[:, 0] * 4 + given[:, 1] * 2 + given[:, 2]), tf.int32)
        w = tf.gather(self.deep_weights, index)[:, None]
        has = wide[:, 1:2]
        return has * ((1.0 - w) * wide[:, 0:1] + w * deep) + (1.0 - has) * deep

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "deep_weight": self.initial_weight}


@keras.saving.register_keras_serializable(package="price")
class GradientScale(keras.layers.Layer):
    """Identity forward; the gradient flowing back through it is multiplied by `factor` (0: none)."""

    def __init__(self, factor: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, x):
        if self.factor == 0.0:
            return tf.stop_gradient(x)
        return self.factor * x + (1.0 - self.factor) * tf.stop_gradient(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="price")
class CompleteOrPartial(keras.layers.Layer):
    """[given [batch, 3], complete, partial] -> `complete` where the listing gives every one of the
    model's `groups` (indices into metadata, text, image), `partial` where it lacks one."""

    def __init__(self, groups=(0, 1, 2), **kwargs):
        super().__init__(**kwargs)
        self.groups = [int(g) for g in groups]

    def call(self, inputs):
        given, complete, partial = inputs
        whole = tf.reduce_all(tf.gather(given, self.groups, axis=-1) > 0, axis=-1, keepdims=True)
        return tf.where(whole, complete, partial)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
