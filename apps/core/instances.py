"""New model instances built the way Django builds the rows it reads: from positional values.

`Model(**kwargs)` matches every keyword against every field and sets each related object through
its descriptor; for the notifications and deliveries of a 1,000-item batch that was about half
of planning them (docs/performance.md, "The fan-out, one change at a time"). Django's own
`Model.from_db` takes the positional path, which only sets attributes; `instance_new` takes it
too, and caches each related object given, as the descriptor would, so reading it back costs no
query.
"""

from functools import cache
from typing import TypeVar

from django.db import models

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
    instance = model(*args)
    for relation, value in related:
        relation.set_cached_value(instance, value)
    return instance
