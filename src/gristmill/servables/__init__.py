"""Servables: a registered model version compiled once into what the server runs."""
