"""Reusable widgets; they post messages up and never import the App."""
