"""A Django project signed in through sessionstore; run it: ``python examples/django_app``."""
