from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateway", "0002_wsticket")]

    operations = [
        migrations.CreateModel(
            name="SeenLogoutToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("key", models.CharField(max_length=80, unique=True)),
                ("expires_at", models.FloatField(db_index=True)),
            ],
        ),
    ]
