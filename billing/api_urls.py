"""The billing API under /api/ inside a studio."""

urlpatterns: list = []
