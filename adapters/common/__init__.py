"""What more than one channel uses: cutting long texts into parts (`text_parts.py`) and
wechatpy's access-token storage shared by the WeChat and WeCom channels (`wechatpy_tokens.py`)."""
