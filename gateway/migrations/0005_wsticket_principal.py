from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateway", "0004_channels_grants")]

    operations = [
        migrations.AlterField(
            model_name="wsticket",
            name="session_key",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.AddField(
            model_name="wsticket",
            name="principal",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
