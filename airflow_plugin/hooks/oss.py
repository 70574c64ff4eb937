"""Alibaba OSS credentials from an Airflow connection, used through oss2."""

from __future__ import annotations

from airflow.sdk import BaseHook

from mmdm.adapters.storage import OssConfig

from . import optional_connection


class OssHook(BaseHook):
    """OSS endpoint and AccessKey for mmdm's storage (the oss2 client).

    Fields: host = endpoint (``oss-cn-hangzhou.aliyuncs.com`` or ``http://127.0.0.1:9000``),
    login = AccessKey id, password = AccessKey secret; extras ``region`` (V4 signing) and
    ``security_token`` (STS).

    :param oss_conn_id: connection id; without one (or the default undefined) the ``OSS_*``
        environment variables are read.
    """

    conn_name_attr = "oss_conn_id"
    default_conn_name = "mmdm_oss_default"
    conn_type = "mmdm_oss"
    hook_name = "mmdm OSS"

    def __init__(self, oss_conn_id: str | None = default_conn_name):
        super().__init__()
        self.oss_conn_id = oss_conn_id

    def get_config(self) -> OssConfig:
        conn = optional_connection(self.oss_conn_id, self.default_conn_name)
        if conn is None:
            return OssConfig.from_env()
        extra = conn.extra_dejson
        return OssConfig(
            endpoint=conn.host or extra.get("endpoint"),
            access_key_id=conn.login,
            access_key_secret=conn.password,
            security_token=extra.get("security_token"),
            region=extra.get("region"),
            connect_timeout=float(extra.get("connect_timeout", 30)),
        )
