from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from cairn import auth
from governance import api as governance_api
from governance import api_waivers
from metrics import api as metrics_api
from roadmap import api as roadmap_api
from scorecards import api as scorecards_api
from strategy import api as strategy_api

router = DefaultRouter()
router.register("programs", roadmap_api.ProgramViewSet, basename="program")
router.register("phases", roadmap_api.PhaseViewSet, basename="phase")
router.register("sections", roadmap_api.SectionViewSet, basename="section")
router.register("items", roadmap_api.ChecklistItemViewSet, basename="item")
router.register("memberships", roadmap_api.MembershipViewSet, basename="membership")
router.register("import-runs", roadmap_api.ImportRunViewSet, basename="import-run")
router.register("snapshots", scorecards_api.SnapshotViewSet, basename="snapshot")
router.register("scorecards", scorecards_api.ScorecardViewSet, basename="scorecard")
router.register("documents", governance_api.DocumentViewSet, basename="document")
router.register("document-versions", governance_api.VersionViewSet, basename="document-version")
router.register("reviews", governance_api.ReviewViewSet, basename="review")
router.register("approvals", governance_api.ApprovalViewSet, basename="approval")
router.register("acknowledgements", governance_api.AcknowledgementViewSet, basename="acknowledgement")
router.register("waivers", api_waivers.WaiverViewSet, basename="waiver")
router.register("metrics", metrics_api.MetricViewSet, basename="metric")
router.register("measurements", metrics_api.MeasurementViewSet, basename="measurement")
router.register("evidence-sources", metrics_api.EvidenceSourceViewSet, basename="evidence-source")
router.register("collection-runs", metrics_api.CollectionRunViewSet, basename="collection-run")
router.register("evidence", metrics_api.EvidenceViewSet, basename="evidence")

admin.site.site_header = "Cairn"
admin.site.site_title = "Cairn"
admin.site.index_title = "Programs, roadmaps and evidence"
admin.site.login_form = auth.AdminLoginForm  # throttled, like the dashboard's login

urlpatterns = [
    path("", include("dashboard.urls")),
    path("accounts/login/", auth.LoginView.as_view(), name="login"),  # throttled; the rest as Django ships it
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/imports/checklist/", roadmap_api.ChecklistImportView.as_view(), name="import-checklist"),
    path(
        "api/v1/programs/<slug:key>/checklist/",
        roadmap_api.ChecklistExportView.as_view(),
        name="export-checklist",
    ),
    path("api/v1/score/", scorecards_api.ScoreView.as_view(), name="score"),
    path("api/v1/programs/<slug:key>/maturity/", scorecards_api.MaturityView.as_view(), name="maturity"),
    path("api/v1/imports/strategy/", strategy_api.StrategyImportView.as_view(), name="import-strategy"),
    path(
        "api/v1/programs/<slug:key>/strategy/",
        strategy_api.StrategyExportView.as_view(),
        name="export-strategy",
    ),
    path("api/v1/auth/token/", auth.AuthTokenView.as_view(), name="auth-token"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "cairn.api.not_found"
