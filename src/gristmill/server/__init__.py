"""``gristmill serve``: the online HTTP API over the model registry's servables."""
