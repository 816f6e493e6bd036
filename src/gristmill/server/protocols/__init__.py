"""The wire protocols the server speaks, each a set of routes over ``ServedModels``."""
