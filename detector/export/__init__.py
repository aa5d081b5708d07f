"""What the detector shows to the outside: Prometheus metrics and the Grafana dashboards built on them."""
