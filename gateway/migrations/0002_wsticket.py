from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateway", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="WsTicket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("ticket_hash", models.CharField(max_length=64, unique=True)),
                ("session_key", models.CharField(max_length=40)),
                ("issuer", models.CharField(max_length=512)),
                ("subject", models.CharField(max_length=255)),
                ("expires_at", models.FloatField()),
            ],
        ),
    ]
