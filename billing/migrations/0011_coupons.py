"""Coupons and gallery sales (issue 20, part 2): `Coupon` (with `CouponProduct`, the products a coupon applies
to), `GallerySale`, and on orders the coupon, the subtotal and the discount (amount = subtotal - discount +
shipping). Existing orders get subtotal = amount - shipping. On PostgreSQL the new tables get their row-level
security and the ledger table's grants here (like 0010)."""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models
from django.db.models import F

from tenants.context import platform_context
from tenants.rls import secure_new_tables

TABLES = ["billing_coupon", "billing_couponproduct", "billing_gallerysale"]


def secure_like_the_ledger(apps, schema_editor):
    """On PostgreSQL: row-level security with the isolation policy, and the ledger table's grants (tenants.rls)."""
    secure_new_tables(schema_editor.connection, TABLES, like="billing_creditentry")


def backfill_subtotals(apps, schema_editor):
    Order = apps.get_model("billing", "Order")
    with platform_context():
        Order.objects.using(schema_editor.connection.alias).update(subtotal=F("amount") - F("shipping_amount"))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0010_prints'),
        ('galleries', '0007_gallery_cover'),
        ('tenants', '0007_gallery_cover'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='discount',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), help_text="The coupon's amount off.", max_digits=10),
        ),
        migrations.AddField(
            model_name='order',
            name='subtotal',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), help_text='The items at the prices charged.', max_digits=10),
        ),
        migrations.CreateModel(
            name='Coupon',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(help_text='Upper case; unique in the studio among active codes.', max_length=40)),
                ('description', models.CharField(blank=True, max_length=200)),
                ('percent_off', models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True)),
                ('amount_off', models.DecimalField(blank=True, decimal_places=2, help_text="In `currency` (the price sheet's).", max_digits=10, null=True)),
                ('currency', models.CharField(default='eur', help_text="The price sheet's currency when created.", max_length=3)),
                ('applies_to', models.CharField(choices=[('all', 'Everything'), ('digital', 'Digital downloads'), ('prints', 'Prints'), ('products', 'Some print products')], default='all', max_length=10)),
                ('min_order', models.DecimalField(blank=True, decimal_places=2, max_digits=10, null=True)),
                ('max_uses', models.PositiveIntegerField(blank=True, help_text='Paid orders in all; empty: no limit.', null=True)),
                ('max_uses_per_client', models.PositiveIntegerField(blank=True, null=True)),
                ('starts_at', models.DateTimeField(blank=True, null=True)),
                ('ends_at', models.DateTimeField(blank=True, null=True)),
                ('is_active', models.BooleanField(default=True)),
                ('stripe_coupon_id', models.CharField(blank=True, max_length=100)),
                ('stripe_promotion_code_id', models.CharField(blank=True, max_length=100)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('studio', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.studio')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='order',
            name='coupon',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='orders', to='billing.coupon'),
        ),
        migrations.CreateModel(
            name='CouponProduct',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('coupon', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.coupon')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.printproduct')),
                ('studio', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.studio')),
            ],
        ),
        migrations.AddField(
            model_name='coupon',
            name='products',
            field=models.ManyToManyField(blank=True, related_name='+', through='billing.CouponProduct', to='billing.printproduct'),
        ),
        migrations.CreateModel(
            name='GallerySale',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('percent_off', models.DecimalField(decimal_places=2, max_digits=5)),
                ('applies_to', models.CharField(choices=[('all', 'Everything'), ('digital', 'Digital downloads'), ('prints', 'Prints')], default='all', max_length=10)),
                ('starts_at', models.DateTimeField()),
                ('ends_at', models.DateTimeField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('gallery', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='galleries.gallery')),
                ('studio', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.studio')),
            ],
            options={
                'ordering': ['-starts_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='couponproduct',
            constraint=models.UniqueConstraint(fields=('studio', 'coupon', 'product'), name='couponproduct_unique'),
        ),
        migrations.AddConstraint(
            model_name='coupon',
            constraint=models.UniqueConstraint(condition=models.Q(('is_active', True)), fields=('studio', 'code'), name='coupon_active_code_unique'),
        ),
        migrations.AddConstraint(
            model_name='coupon',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('amount_off__isnull', True), ('percent_off__isnull', False)), models.Q(('amount_off__isnull', False), ('percent_off__isnull', True)), _connector='OR'), name='coupon_percent_xor_amount'),
        ),
        migrations.AddIndex(
            model_name='gallerysale',
            index=models.Index(fields=['studio', 'ends_at'], name='gallerysale_studio_end'),
        ),
        migrations.RunPython(secure_like_the_ledger, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(backfill_subtotals, migrations.RunPython.noop, elidable=False),
    ]
