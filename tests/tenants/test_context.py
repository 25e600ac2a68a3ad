import pytest

from tenants.context import (
    CrossTenantWrite,
    TenantContextMissing,
    platform_context,
    tenant_context,
)
from tenants.models import Membership

pytestmark = pytest.mark.django_db


def test_manager_raises_without_a_studio(two_tenants):
    with pytest.raises(TenantContextMissing):
        list(Membership.objects.all())


def test_manager_filters_to_the_current_studio(two_tenants):
    a, b = two_tenants
    with tenant_context(a.studio):
        assert list(Membership.objects.all()) == [a.membership]
        assert not Membership.objects.filter(pk=b.membership.pk).exists()
    with tenant_context(b.studio):
        assert list(Membership.objects.all()) == [b.membership]


def test_context_is_reset_after_the_block_even_on_error(two_tenants):
    a, _ = two_tenants
    with pytest.raises(ZeroDivisionError), tenant_context(a.studio):
        1 / 0  # noqa: B018
    with pytest.raises(TenantContextMissing):
        Membership.objects.count()


def test_saving_another_studios_object_raises(two_tenants):
    a, b = two_tenants
    with tenant_context(a.studio), pytest.raises(CrossTenantWrite):
        b.membership.role = "staff"
        b.membership.save()


def test_new_object_gets_the_current_studio(two_tenants):
    a, b = two_tenants
    from tenants.models import User

    user = User.objects.create_user("new@example.com", "x" * 12)
    with tenant_context(b.studio):
        m = Membership.objects.create(user=user)
    assert m.studio_id == b.studio.pk


def test_bulk_create_is_checked(two_tenants):
    a, b = two_tenants
    from tenants.models import User

    user = User.objects.create_user("bulk@example.com", "x" * 12)
    with tenant_context(a.studio), pytest.raises(CrossTenantWrite):
        Membership.objects.bulk_create([Membership(user=user, studio=b.studio)])


def test_platform_context_and_unscoped_are_the_escape_hatches(two_tenants):
    with platform_context():
        assert Membership.objects.count() == 2
    with platform_context():
        assert Membership.objects.unscoped().count() == 2


def test_related_managers_are_scoped_too(two_tenants):
    a, _ = two_tenants
    with pytest.raises(TenantContextMissing):
        list(a.owner.memberships.all())
    with tenant_context(a.studio):
        assert list(a.owner.memberships.all()) == [a.membership]
