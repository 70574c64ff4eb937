"""Hooks: each turns an Airflow connection into an mmdm adapter. Secrets stay inside them."""
