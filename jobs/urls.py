"""Job pages, inside a studio at /jobs/ (object ids are `job_id`: see tests/test_isolation.py).
URL names are global like the rest of the studio's pages (the main navigation links to `jobs`)."""

from django.urls import path

from jobs import views

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("start-demo/", views.start_demo, name="job_start_demo"),
    path("<int:job_id>/", views.job_detail, name="job_detail"),
    path("<int:job_id>/progress/", views.job_progress, name="job_progress"),
    path("<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("<int:job_id>/retry/", views.job_retry, name="job_retry"),
]
