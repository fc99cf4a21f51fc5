"""A small schema, to show the code hookline generates for it."""

import hookline
from hookline import fields


class Click(hookline.Event):
    user_id = fields.String(min_length=1)
    ts = fields.Timestamp()
    tags = fields.List(fields.String(), default=list)
