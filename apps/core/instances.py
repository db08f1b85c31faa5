"""New model instances built the way Django builds the rows it reads: from positional values.

`Model(**kwargs)` matches every keyword against every field and sets each related object through
its descriptor; for the notifications and deliveries of a 1,000-item batch that was about half
of planning them (docs/performance.md, "The fan-out, one change at a time"). Django's own
`Model.from_db` takes the positional path, which only sets attributes; `instance_new` takes it
too, and caches each related object given, as the descriptor would, so reading it back costs no
query.

Both build through `instance_positional`: where no field's descriptor does more than store its
value and nothing listens to `pre_init` or `post_init`, the values go straight into the instance,
as `Model.__init__` would have put them there one `setattr` at a time after sending both signals.
A worker's claim builds six instances a row (docs/performance.md, "The claim's instances").
"""

from functools import cache
from typing import TypeVar

from django.db import models
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

M = TypeVar("M", bound=models.Model)


@cache
def _recipe(model: type[models.Model], names: tuple[str, ...]):
    """For these keyword names: per concrete field, where its value comes from; None if a name is
    not a field of the model."""
    recipe, used = [], 0
    for field in model._meta.concrete_fields:
        if field.name in names:
            recipe.append((field.name, field if field.is_relation else None, None))
            used += 1
        elif field.attname in names:
            recipe.append((field.attname, None, None))
            used += 1
        else:
            recipe.append((None, None, field.get_default))
    return recipe if used == len(names) else None


def instance_new(model: type[M], **values) -> M:
    """`model(**values)`, for values by field name (a related object, or None) or attname (`project_id`)."""
    recipe = _recipe(model, tuple(values))
    if recipe is None:
        return model(**values)  # a name that is not a field: Django's TypeError
    args, related = [], []
    for name, relation, default in recipe:
        if name is None:
            args.append(default())
            continue
        value = values[name]
        if relation is not None:
            if value is not None and value.pk is None:
                return model(**values)  # an unsaved related object: Django's checks and messages
            related.append((relation, value))
            value = None if value is None else getattr(value, relation.target_field.attname)
        args.append(value)
    instance = instance_positional(model, args)
    for relation, value in related:
        relation.set_cached_value(instance, value)
    return instance


# What `setattr(instance, field.attname, value)` runs for a concrete field: a DeferredAttribute
# has no __set__, and a ForeignKeyDeferredAttribute's only forgets a related object cached under
# another key, which a new instance has none of. Either way the value lands in the instance's
# __dict__.
_STORING_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)


@cache
def _attnames_stored_directly(model: type[models.Model]) -> tuple[str, ...] | None:
    """The concrete fields' attnames, in order, if setting each one only stores it; else None."""
    fields = model._meta.concrete_fields
    if any(type(getattr(model, field.attname, None)) not in _STORING_DESCRIPTORS for field in fields):
        return None
    return tuple(field.attname for field in fields)


def instance_positional(model: type[M], values, *, db: str | None = None) -> M:
    """`model(*values)`, a value for every concrete field in order; with `db`, as
    `model.from_db(db, …)` gives a row read from that database (not `adding`)."""
    attnames = _attnames_stored_directly(model)
    if attnames is None or len(values) != len(attnames) or pre_init.receivers or post_init.receivers:
        instance = model(*values)
    else:
        instance = model.__new__(model)
        instance._state = ModelState()
        instance.__dict__.update(zip(attnames, values, strict=True))
    if db is not None:
        instance._state.adding = False
        instance._state.db = db
    return instance
