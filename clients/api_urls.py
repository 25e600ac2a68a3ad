"""The intake API's routes (included under /api/ inside a studio; the endpoints are listed in clients/api.py).
Object ids are `<model>_id` (client_id, clientgroup_id, consenttext_id, photoset_id, photo_id, uploadlink_id):
the isolation matrix attacks each with the other studio's ids."""

from rest_framework.routers import SimpleRouter

from clients import api, api_groups

SET = r"clients/(?P<client_id>[0-9]+)/photo-sets/(?P<photoset_id>[0-9]+)"

router = SimpleRouter()
router.register("clients", api.ClientViewSet, basename="api-client")
router.register("groups", api_groups.GroupViewSet, basename="api-clientgroup")
router.register("consent-texts", api.ConsentTextViewSet, basename="api-consenttext")
router.register(r"clients/(?P<client_id>[0-9]+)/photo-sets", api.PhotoSetViewSet, basename="api-photoset")
router.register(SET + "/photos", api.PhotoViewSet, basename="api-photo")
router.register(SET + "/upload-links", api.UploadLinkViewSet, basename="api-uploadlink")

urlpatterns = router.urls
