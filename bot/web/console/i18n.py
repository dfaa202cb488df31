"""The console's words in Chinese and English: one small catalogue, so a missing translation
is a test failure, not a blank on an agent's screen.

The language is the agent's choice (a toggle kept in the session), at first whatever the
browser's Accept-Language prefers of the two."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "weekly_report": {"zh": "上周服务报告", "en": "Last week's report"},
    "warning_too_long": {
        "zh": "回复太长，未发送，请分成几条",
        "en": "Too long, not sent: split it",
    },
    "no_report": {
        "zh": "还没有周报：每周一 9:00 自动生成，或运行 bot report --week。",
        "en": "No weekly report yet: one is written every Monday 09:00, or run bot report --week.",
    },
    "report_messages": {"zh": "客户消息", "en": "Customer messages"},
    "report_containment": {"zh": "机器人独立解决率", "en": "Contained by the bot"},
    "report_frt_human": {"zh": "人工首次响应（中位数）", "en": "Human first response (median)"},
    "report_sla": {"zh": "SLA 达标率", "en": "SLA met"},
    "report_fcr": {"zh": "首次解决率", "en": "First-contact resolution"},
    "report_csat": {"zh": "满意度", "en": "CSAT"},
    "report_nps": {"zh": "NPS", "en": "NPS"},
    "console": {"zh": "客服工作台", "en": "Agent console"},
    "queues": {"zh": "队列", "en": "Queues"},
    "supervisor": {"zh": "主管视图", "en": "Supervisor"},
    "logout": {"zh": "退出", "en": "Log out"},
    "login": {"zh": "登录", "en": "Log in"},
    "login_title": {"zh": "客服登录", "en": "Agent login"},
    "login_name": {"zh": "账号", "en": "Login"},
    "password": {"zh": "密码", "en": "Password"},
    "login_refused": {
        "zh": "账号或密码不正确，或账号已被停用/暂时锁定。",
        "en": "Wrong login or password, or the account is disabled or locked for a while.",
    },
    "logged_out": {"zh": "您已退出。", "en": "You have logged out."},
    "switch_language": {"zh": "English", "en": "中文"},
    "claim_next": {"zh": "领取下一个", "en": "Claim next"},
    "claim": {"zh": "领取", "en": "Claim"},
    "nothing_to_claim": {
        "zh": "您的队列中暂时没有待领取的工单。",
        "en": "No ticket is waiting in your queues.",
    },
    "queue": {"zh": "队列", "en": "Queue"},
    "open_now": {"zh": "服务中", "en": "open"},
    "closed_now": {"zh": "非工作时间", "en": "closed"},
    "count_queue_closed": {"zh": "待开放", "en": "queue closed"},
    "count_queued": {"zh": "排队", "en": "queued"},
    "count_assigned": {"zh": "已分配", "en": "assigned"},
    "count_breached": {"zh": "超时", "en": "late"},
    "oldest_wait": {"zh": "最长等待", "en": "oldest wait"},
    "next_due": {"zh": "最近首响时限", "en": "next first response due"},
    "my_tickets": {"zh": "我的工单", "en": "My tickets"},
    "no_my_tickets": {"zh": "您手上没有工单。", "en": "You have no open tickets."},
    "waiting_tickets": {"zh": "排队中的工单", "en": "Tickets waiting"},
    "no_waiting_tickets": {"zh": "没有排队的工单。", "en": "No tickets waiting."},
    "ticket": {"zh": "工单", "en": "Ticket"},
    "customer": {"zh": "客户", "en": "Customer"},
    "channel": {"zh": "渠道", "en": "Channel"},
    "priority": {"zh": "优先级", "en": "Priority"},
    "category": {"zh": "类别", "en": "Category"},
    "status": {"zh": "状态", "en": "Status"},
    "agent": {"zh": "客服", "en": "Agent"},
    "created": {"zh": "创建", "en": "Created"},
    "first_response_due": {"zh": "首次响应时限", "en": "First response due"},
    #: the label of the clock on a queue's row: the time left to the first-response deadline
    "first_response_left": {"zh": "首响时限", "en": "Reply due"},
    "first_response": {"zh": "首次响应", "en": "First response"},
    "transfer_due": {"zh": "转接时限", "en": "Transfer due"},
    "overdue": {"zh": "已超时", "en": "overdue"},
    "transcript": {"zh": "对话记录", "en": "Transcript"},
    "history": {"zh": "工单历史", "en": "History"},
    "author_customer": {"zh": "客户", "en": "Customer"},
    "author_bot": {"zh": "机器人", "en": "Bot"},
    "author_agent": {"zh": "客服", "en": "Agent"},
    "bot_reason": {"zh": "机器人处理", "en": "Bot"},
    "internal_record": {"zh": "内部记录（英文）：", "en": "Internal record:"},
    "channel_said": {"zh": "渠道返回的原文（英文）：", "en": "The channel said:"},
    "action_answer": {"zh": "知识库回答", "en": "answered from the FAQ"},
    "action_reply": {"zh": "固定回复", "en": "template reply"},
    "action_suggest": {"zh": "推荐相关问题", "en": "suggested questions"},
    "action_fallback": {"zh": "未能理解", "en": "not understood"},
    "action_not_text": {"zh": "非文字消息", "en": "not text"},
    "action_handoff": {"zh": "转人工", "en": "handed to a person"},
    "action_silent": {"zh": "未回复（人工处理中或刷屏）", "en": "silent (a person's, or a flood)"},
    "action_duplicate": {"zh": "重复消息", "en": "repeated delivery"},
    "csat": {"zh": "满意度", "en": "Satisfaction"},
    "csat_none": {"zh": "客户尚未评价", "en": "not rated yet"},
    "nps": {"zh": "推荐度", "en": "NPS"},
    "reply": {"zh": "回复", "en": "Reply"},
    "reply_placeholder": {"zh": "输入回复内容…", "en": "Type your reply…"},
    "send": {"zh": "发送", "en": "Send"},
    "send_anyway": {"zh": "仍然发送", "en": "Send anyway"},
    "reply_sent": {"zh": "回复已发送。", "en": "Reply sent."},
    "reply_empty": {"zh": "回复内容不能为空。", "en": "The reply is empty."},
    "reply_held": {
        "zh": "回复未发送：请检查以下提示，确认无误后点击“仍然发送”。",
        "en": "Not sent: look at the warnings below; click “Send anyway” if it is right.",
    },
    "warning_forbidden": {"zh": "包含忌语", "en": "Forbidden phrase (忌语)"},
    "warning_password": {"zh": "在索要密码", "en": "Asks for a password"},
    "canned": {"zh": "快捷回复", "en": "Canned replies"},
    "no_canned": {"zh": "没有配置快捷回复。", "en": "No canned replies configured."},
    "assist": {"zh": "智能辅助", "en": "Agent assist"},
    "assist_hint": {
        "zh": "与客户最后一个问题最相关的知识库答案，点击插入回复框。",
        "en": "FAQ answers closest to the customer's last question; click one to insert it.",
    },
    "no_assist": {"zh": "知识库中没有相关答案。", "en": "Nothing in the FAQ matches."},
    "insert": {"zh": "插入", "en": "Insert"},
    "loading": {"zh": "加载中…", "en": "Loading…"},
    "transfer": {"zh": "转接", "en": "Transfer"},
    "transfer_to": {"zh": "转给", "en": "Transfer to"},
    "to_queue": {"zh": "队列", "en": "Queue"},
    "to_agent": {"zh": "客服", "en": "Agent"},
    "note": {"zh": "备注", "en": "Note"},
    "transfer_note_placeholder": {
        "zh": "给接手同事的说明",
        "en": "What the next person should know",
    },
    "transferred": {"zh": "工单已转接。", "en": "Ticket transferred."},
    "transfer_target_missing": {"zh": "请选择转接目标。", "en": "Choose where to transfer."},
    "resolve": {"zh": "解决并结束", "en": "Resolve"},
    "resolved": {
        "zh": "工单已解决，已向客户发送满意度调查。",
        "en": "Ticket resolved; the customer was asked for satisfaction.",
    },
    "claimed": {"zh": "工单已领取。", "en": "Ticket claimed."},
    "not_yours": {
        "zh": "此工单不在您名下：领取后才能回复和解决。",
        "en": "This ticket is not yours: claim it to reply and resolve.",
    },
    "ticket_done": {"zh": "此工单已解决。", "en": "This ticket is resolved."},
    "unreachable": {"zh": "无法送达客户", "en": "Customer unreachable"},
    "back": {"zh": "返回队列", "en": "Back to queues"},
    "depth": {"zh": "队列深度", "en": "Queue depth"},
    "breaches": {"zh": "SLA 超时", "en": "SLA breaches"},
    "no_breaches": {"zh": "没有超时工单。", "en": "No breached tickets."},
    "agents_online": {"zh": "客服在线情况", "en": "Agents online"},
    "online": {"zh": "在线", "en": "online"},
    "offline": {"zh": "离线", "en": "offline"},
    "role": {"zh": "角色", "en": "Role"},
    "open_tickets": {"zh": "处理中", "en": "open"},
    "resolved_today": {"zh": "今日解决", "en": "resolved today"},
    "today": {"zh": "今日数据", "en": "Today"},
    "created_today": {"zh": "新建工单", "en": "tickets created"},
    "messages_today": {"zh": "客户消息", "en": "customer messages"},
    "csat_today": {"zh": "满意度评价", "en": "CSAT answers"},
    "csat_mean": {"zh": "平均满意度", "en": "mean CSAT"},
    "forbidden_page": {
        "zh": "您的角色无权访问此页面或工单。",
        "en": "Your role may not open this page or ticket.",
    },
    "not_found": {"zh": "找不到该页面或工单。", "en": "No such page or ticket."},
    "bad_request": {
        "zh": "无法完成此操作，请检查后重试。",
        "en": "That could not be done; check and try again.",
    },
    "conflict": {
        "zh": "工单状态已变化（可能已被他人领取或已解决），页面已更新。",
        "en": "The ticket moved on meanwhile (claimed by someone else or resolved).",
    },
    "csrf_refused": {
        "zh": "请求无效或页面已过期，请刷新页面后重试。",
        "en": "The form expired or was not sent from the console; reload the page and try again.",
    },
    "error": {"zh": "出错了", "en": "Something went wrong"},
    "live": {"zh": "实时", "en": "live"},
    "role_agent": {"zh": "客服", "en": "agent"},
    "role_supervisor": {"zh": "主管", "en": "supervisor"},
    "role_admin": {"zh": "管理员", "en": "admin"},
    "status_queue_closed": {"zh": "待开放", "en": "queue closed"},
    "status_queued": {"zh": "排队中", "en": "queued"},
    "status_assigned": {"zh": "已分配", "en": "assigned"},
    "status_awaiting_customer": {"zh": "等待客户回复", "en": "awaiting customer"},
    "status_resolved": {"zh": "已解决", "en": "resolved"},
    "status_closed": {"zh": "已关闭", "en": "closed"},
    "done_tickets": {"zh": "已处理", "en": "Done"},
    "tab_resolved": {"zh": "已解决", "en": "Resolved"},
    "tab_closed": {"zh": "已关闭", "en": "Closed"},
    "no_done_tickets": {"zh": "没有这样的工单。", "en": "No such tickets."},
    "more": {"zh": "更多", "en": "More"},
    "search": {"zh": "搜索", "en": "Search"},
    "notify_off": {"zh": "新工单提醒：关", "en": "New-ticket alerts: off"},
    "notify_on": {"zh": "新工单提醒：开", "en": "New-ticket alerts: on"},
    "notify_title": {"zh": "新工单", "en": "New ticket"},
    "earlier_tickets": {"zh": "该客户的其他工单", "en": "This customer's other tickets"},
    "no_earlier_tickets": {"zh": "没有其他工单。", "en": "No other tickets."},
    "conversations": {"zh": "该客户的会话", "en": "This customer's conversations"},
    "chat": {"zh": "会话窗口", "en": "chat"},
    "messages_in": {"zh": "客户消息", "en": "messages"},
    "tickets_opened": {"zh": "工单", "en": "tickets"},
    "search_placeholder": {
        "zh": "工单号、客户 ID 或消息内容",
        "en": "Ticket number, customer id or words",
    },
    "search_results": {"zh": "搜索结果", "en": "Search results"},
    "no_search_results": {"zh": "没有找到工单。", "en": "No ticket found."},
    "priority_urgent": {"zh": "紧急", "en": "Urgent"},
    "priority_high": {"zh": "高", "en": "High"},
    "priority_normal": {"zh": "普通", "en": "Normal"},
    "priority_low": {"zh": "低", "en": "Low"},
    "category_consult": {"zh": "咨询", "en": "consult"},
    "category_complaint": {"zh": "投诉", "en": "complaint"},
    "category_after_sales": {"zh": "售后", "en": "after-sales"},
    "category_tech": {"zh": "技术", "en": "tech"},
    "event_created": {"zh": "创建", "en": "created"},
    "event_claimed": {"zh": "领取", "en": "claimed"},
    "event_replied": {"zh": "回复", "en": "replied"},
    "event_transferred": {"zh": "转接", "en": "transferred"},
    "event_escalated": {"zh": "升级", "en": "escalated"},
    "event_breached": {"zh": "超时", "en": "SLA breached"},
    "event_resolved": {"zh": "解决", "en": "resolved"},
    "event_reopened": {"zh": "重新打开", "en": "reopened"},
    "event_released": {"zh": "开放接入", "en": "released at opening"},
    "event_csat": {"zh": "满意度评价", "en": "CSAT"},
    "event_nps": {"zh": "推荐度评价", "en": "NPS"},
    "event_closed": {"zh": "关闭", "en": "closed"},
    "event_care": {"zh": "安抚消息已发送", "en": "apology sent"},
    "data_note": {"zh": "备注", "en": "note"},
    "data_queue": {"zh": "队列", "en": "queue"},
    "data_to": {"zh": "转至", "en": "to"},
    "data_from": {"zh": "来自", "en": "from"},
    "data_reason": {"zh": "原因", "en": "reason"},
    "data_score": {"zh": "评分", "en": "score"},
    "data_priority": {"zh": "优先级", "en": "priority"},
    "data_agent": {"zh": "客服", "en": "agent"},
    "data_first": {"zh": "首次响应", "en": "first response"},
    "data_from_queue": {"zh": "原队列", "en": "from queue"},
    "data_waited_minutes": {"zh": "已等待（分钟）", "en": "waited (min)"},
    "data_breach": {"zh": "超时项", "en": "missed"},
    "data_priority_from": {"zh": "原优先级", "en": "priority was"},
    "data_priority_to": {"zh": "新优先级", "en": "priority now"},
    "data_queue_from": {"zh": "原队列", "en": "queue was"},
    "data_queue_to": {"zh": "新队列", "en": "queue now"},
    "data_message_id": {"zh": "消息", "en": "message"},
    "reason_urgent": {"zh": "紧急情况", "en": "an emergency"},
    "reason_complaint_while_waiting": {"zh": "等待中投诉", "en": "complained while waiting"},
    "breach_first_response": {"zh": "首次响应", "en": "first response"},
    "breach_transfer": {"zh": "转接", "en": "transfer"},
}


def translate(language: str, key: str) -> str:
    """The text for `key`; an unknown key (a new status or event kind from the desk) is shown
    as itself rather than failing the page."""
    texts = MESSAGES.get(key)
    if texts is None:
        return key.split("_", 1)[-1] if "_" in key else key
    return texts.get(language) or texts["zh"]


def preferred(accept_language: str | None) -> str:
    """The first of zh/en in the browser's Accept-Language by weight; Chinese by default."""
    best, best_q = "zh", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = language, q
    return best
