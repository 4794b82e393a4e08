"""Every user-facing Chinese string in one place."""

CHAT_WELCOME = "南阳卫生健康体育动态问答（简短的追问会接着上一条回答引用的报道来理解；/new 开始新话题；空行退出）"
EMPTY_QUESTION = "请输入您想问的问题，例如：“家里老人卧床，能约护士上门吗？”"
NOT_FOUND = "抱歉，简报中没有找到这个问题的答案。"
NOT_FOUND_IN_RANGE = "抱歉，简报中没有找到{label}的相关内容。"
ONLY_OTHER_ORDINAL = "简报只报道了{ordinal}。"
NEAREST = "最接近的报道：{date} 期《{title}》"
NEWEST_ISSUE = "简报目前最新一期是 {date} 期。"
QUOTE = "{n}. 据 {date} 期《{title}》：\n“{quote}”"   # the rules reader's block per cited article
LEAD = "{quote}〔{n}〕"                 # the answer's first line: the fact in the bulletin's words
SUPPORT = "“{quote}”〔{n}〕"            # up to two supporting quotes

LIST_HEADER = "简报中共有 {n} 篇相关报道："
LIST_LINE = "· {date}《{title}》（{issue} 期〔{n}〕）：{quote}"
SOURCES_HEADER = "来源："

# -- shared by the channels ---------------------------------------------------------------------
SORRY = "抱歉，系统出了点问题，请稍后再试。"
EXAMPLE_QUESTIONS = (
    "市六院7月那次组织献血，一共献了多少毫升？",
    "家里老人卧床，能约护士上门吗？",
    "7月12日那天有哪些活动？",
    "哪些医院组织过献血？",
)

# -- WeChat Official Account --------------------------------------------------------------------
WECHAT_WELCOME = ("欢迎关注！我可以回答关于《南阳卫生健康体育动态》简报的问题，每个回答都注明出自哪一期、哪篇报道。\n"
                  "您可以这样问：\n{examples}")
WECHAT_EXAMPLE_LINE = "· {question}"
WECHAT_TEXT_ONLY = "暂时只能回答文字问题，请直接输入您想问的内容。"
WECHAT_WORKING = "正在查询…"
WECHAT_WORKING_ASK_MORE = "正在查询…请稍后回复「更多」查看答案。"
WECHAT_MORE_COMMAND = "更多"
WECHAT_MORE_HINT = "\n（内容较长，回复「更多」查看后续）"
WECHAT_NO_MORE = "没有更多内容了，请继续提问。"

# -- HTTP API and web chat page -------------------------------------------------------------------
API_BAD_JSON = "请求体必须是 JSON 对象，例如 {\"question\": \"...\"}。"
API_NO_QUESTION = "缺少问题：请在 question 字段中填写要问的内容。"
API_QUESTION_NOT_TEXT = "question 必须是文字（JSON 字符串），例如 {\"question\": \"...\"}。"
API_BAD_CHARACTERS = "问题里有无法识别的字符（不成对的 Unicode 代理项），请重新输入。"
API_ARTICLE_PARAMS = "需要两个参数：date（YYYY-MM-DD）和 title，例如 /api/article?date=2025-07-15&title=…"
API_QUESTION_TOO_LONG = "问题太长了（最多 {limit} 个字），请精简后再问。"
API_BAD_K = "k 必须是 1 到 50 之间的整数。"
API_BODY_TOO_LARGE = "请求体太大（最多 {limit} 字节）。"
API_NO_ARTICLE = "没有找到这篇报道。"
API_SERVER_ERROR = SORRY
WEB_TITLE = "南阳卫生健康体育动态 · 问答"
WEB_SUBTITLE = "回答均摘自简报原文，并注明出处"
WEB_PLACEHOLDER = "输入问题，例如：哪些医院组织过献血？"
WEB_SEND = "发送"
WEB_EXAMPLES_LABEL = "试试这样问："
WEB_THINKING = "正在查询…"
WEB_SOURCES = "来源（点开看全文）"
WEB_NEAREST = "最接近的报道（点开看全文）"
WEB_LOADING_ARTICLE = "正在载入全文…"
WEB_NETWORK_ERROR = "网络出错了，请稍后再试。"

# -- Telegram -----------------------------------------------------------------------------------
TG_WELCOME = ("您好！我可以回答关于《南阳卫生健康体育动态》简报的问题，每个回答都注明出自哪一期、哪个单位、哪篇报道。\n"
              "直接发文字提问即可，也可以点下面的示例问题：")
TG_EXAMPLES = ("市六院7月那次组织献血，一共献了多少毫升？",
               "家里老人卧床，能约护士上门吗？",
               "哪些医院组织过献血？",
               "最近一期有哪些内容？")
TG_HELP = ("直接发文字提问，例如“哪些医院组织过献血？”。回答下方可以查看“原文”并评价 👍/👎。\n"
           "紧接着追问（如“那一共有多少人参加？”）会按刚才引用的报道理解；/new 开始新话题。\n"
           "/search 关键词 — 按关键词查找报道\n"
           "/latest — 最新一期的文章标题\n"
           "/issues — 已收录的各期简报\n"
           "/follow 关键词 — 关注话题，新一期有相关报道时通知您；/following 查看，/unfollow 编号 取消\n"
           "在群里请 @我 或回复我的消息提问。")
TG_ADMIN_HELP = ("管理员：直接发送简报文件（PDF/TXT/DOCX/MD）即可收录；"
                 "/reindex 重建索引；/stats 使用统计；/unanswered 未能回答的问题。")
TG_NEW_TOPIC = "好的，已开始新话题。"
TG_TOO_LONG = "问题有点长（{n} 字），请精简到 {limit} 字以内再问。"
TG_NOT_TEXT = "我只能读文字消息，请直接用文字提问。"
TG_DOCUMENT_NOT_ADMIN = "只有管理员可以上传简报文件；有问题请直接用文字提问。"
TG_RATE_LIMITED = "您提问太快了，请稍等一分钟再问。"
TG_SORRY = "抱歉，处理您的消息时出了点问题，请稍后再试。"
TG_ADMIN_ERROR_NOTICE = "机器人出错：{error}（详见日志）"
TG_NOT_ADMIN = "抱歉，这个命令只有管理员可以使用。"
TG_SOURCE_BUTTON = "原文"
TG_SOURCE_BUTTON_N = "原文{n}"
TG_FEEDBACK_UP = "👍"
TG_FEEDBACK_DOWN = "👎"
TG_FEEDBACK_THANKS = "谢谢您的反馈！"
TG_FEEDBACK_UNKNOWN = "只有提问的人可以评价这条回答（或这条记录已不存在）。"
TG_ARTICLE_GONE = "这篇报道已更新或删除，请重新提问。"
TG_ARTICLE_HEADER = "{date} 期 · {unit}\n{title}"
TG_SEARCH_USAGE = "用法：/search 关键词（多个关键词用空格隔开），例如 /search 献血"
TG_SEARCH_NONE = "没有找到包含“{query}”的报道。"
TG_SEARCH_HEADER = "包含“{query}”的报道共 {n} 篇（第 {page}/{pages} 页）："
TG_SEARCH_LINE = "{n}. {date}《{title}》（{unit}）"
TG_SEARCH_EXPIRED = "这次搜索已过期，请重新发送 /search。"
TG_PREV_PAGE = "‹ 上一页"
TG_NEXT_PAGE = "下一页 ›"
TG_LATEST_HEADER = "最新一期：{date}，共 {n} 篇："
TG_LATEST_LINE = "{n}. {title}（{unit}）"
TG_NO_ISSUES = "还没有收录任何简报。"
TG_ISSUES_HEADER = "已收录 {n} 期简报："
TG_ISSUES_LINE = "· {date}（{source}）{articles} 篇"
TG_UPLOAD_RECEIVED = "已收到《{name}》，正在收录……"
TG_UPLOAD_SUFFIX = "无法收录《{name}》：只支持 PDF、TXT、DOCX、MD 文件。"
TG_UPLOAD_TOO_BIG = "无法收录《{name}》：文件超过 {mb:g} MB。"
TG_UPLOAD_BAD_NAME = "无法收录这个文件：文件名{why}，请改短或去掉特殊字符后重新发送。"
TG_INGEST_ADDED = "已收录：{item}"
TG_INGEST_REPLACED = "已更新（替换同一期的旧版本）：{item}"
TG_INGEST_SKIPPED = "无需更新：{item}（{why}）"
TG_INGEST_REJECTED = "未收录：{item}，原因：{why}"
TG_INDEX_BUSY = "另一项收录或重建正在进行，请稍后再试。"
TG_REINDEX_STARTED = "开始重建索引……（期间照常回答问题）"
TG_REINDEX_PROGRESS = "正在重建索引：{done}/{total}（{name}）"
TG_REINDEX_DONE = "索引重建完成：{issues} 期、{articles} 篇，用时 {seconds:.1f} 秒。"
TG_REINDEX_FAILED = "索引重建失败：{why}"
TG_STATS = ("使用统计：\n近 24 小时提问 {day} 次，近 7 天 {week} 次\n"
            "未能回答的比例（7 天）：{rate:.0%}\n反馈：👍 {up}　👎 {down}\n常见问题：")
TG_STATS_TOP = "· {question}（{count} 次）"
TG_UNANSWERED_HEADER = "最近未能回答的问题："
TG_UNANSWERED_LINE = "· {time} [{channel}] {question}"
TG_UNANSWERED_NONE = "最近没有未能回答的问题。"
TG_COMMANDS = (("start", "开始使用与示例问题"), ("help", "使用说明"), ("new", "开始新话题"),
               ("search", "按关键词查找报道"), ("latest", "最新一期的文章"), ("issues", "已收录的各期简报"),
               ("follow", "关注一个话题"), ("following", "我关注的话题"), ("unfollow", "取消关注"))

# -- following a topic (Telegram, WeChat) ---------------------------------------------------------
FOLLOW_USAGE = ("用法：/follow 关键词（同一话题的几个词用空格隔开，例如 /follow 义诊 镇平）；"
                "/following 查看已关注的话题，/unfollow 编号 取消关注。")
FOLLOW_EMPTY = "请在关注后面写上话题，例如：关注 义诊 镇平"
FOLLOW_TOO_LONG = "话题太长了（{n} 字），请精简到 {limit} 字以内。"
FOLLOW_TOO_MANY = "您已关注 {limit} 个话题，达到上限；请先取消关注一个（先查看编号）。"
FOLLOW_DUPLICATE = "您已经关注了「{topic}」。"
FOLLOW_RATE_LIMITED = "操作太频繁了，请稍等一分钟再试。"
FOLLOW_ADDED = "已关注「{topic}」：有新一期简报报道这个话题时会通知您。"
FOLLOW_NEVER_MATCHED = "（目前已收录的简报中还没有与「{topic}」相符的报道，仍会为您留意。）"
FOLLOW_MATCHED_BEFORE = "（已收录的简报中有 {n} 篇相关报道，最近一篇：{citation}）"
FOLLOW_FEED = "订阅链接（RSS/Atom）：{url}"
FOLLOWING_NONE = "您还没有关注任何话题。用法：/follow 关键词"
FOLLOWING_HEADER = "您关注的话题："
FOLLOWING_LINE = "{n}. {topic}"
UNFOLLOW_USAGE = "请写上要取消的编号，例如 /unfollow 1（编号见 /following）。"
UNFOLLOW_BAD_NUMBER = "没有编号为 {n} 的话题，请先用 /following 查看编号。"
UNFOLLOWED = "已取消关注「{topic}」。"
FOLLOW_BUTTON = "关注这个话题"
FOLLOW_NOTICE_HEADER = "您关注的「{topics}」有新报道（{date} 期）："
FOLLOW_NOTICE_LINE = "{n}. {lead}\n〔{citation}〕"
FOLLOW_NOTICE_FOOTER = "（/following 查看关注，/unfollow 编号 取消）"
FOLLOW_STATS = "关注：{followers} 人、{topics} 个话题"
FOLLOW_NOTIFIED = "已通知关注者：{sent} 条消息（{dropped} 个已屏蔽机器人的聊天被移除，{failed} 条未送达）"
WECHAT_FOLLOW_COMMAND = "关注"
WECHAT_UNFOLLOW_COMMAND = "取消关注"
WECHAT_FOLLOWING_COMMAND = "我的关注"
WECHAT_FOLLOW_FOOTER = "（回复「我的关注」查看，「取消关注 编号」取消）"
FEED_ALL_TITLE = "南阳卫生健康体育动态 · 全部报道"
FEED_TOPIC_TITLE = "南阳卫生健康体育动态 · {topic}"
FEED_SUBTITLE = "摘自《南阳卫生健康体育动态》简报原文，注明出处"
WEB_SUBSCRIBE_ALL = "订阅全部报道（RSS/Atom）"
WEB_SUBSCRIBE_TOPIC = "订阅这个话题"
