from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.program_list, name="programs"),
    path("programs/<slug:key>/", views.program_dashboard, name="program"),
    path("programs/<slug:key>/scorecards/", views.scorecard_generate, name="generate"),
]
