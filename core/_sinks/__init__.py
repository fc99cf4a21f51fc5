"""The sinks that come with hookline: SQLite (the default), PostgreSQL, and the ``--jsonl``
file written beside either. The interface they implement is public: ``hookline.sinks``."""
