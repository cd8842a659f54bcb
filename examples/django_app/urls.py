from __future__ import annotations

from django.urls import path

from django_app import views

urlpatterns = [
    path("", views.home),
    path("login", views.sign_in),
    path("logout", views.sign_out),
    path("healthz", views.health),
]
