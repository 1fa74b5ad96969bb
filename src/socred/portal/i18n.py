"""Translations of the portal: Chinese (the default) and English.

UI strings are written in English in the templates (``_("Search")``) and looked up in :data:`ZH`
for Chinese pages; a test checks that every string used has a Chinese translation. Catalog
entries (categories, lists, measures) carry English titles in the catalog files; the shipped
catalogs' codes are translated here, any other code falls back to its catalog title. Region
names follow GB/T 2260.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socred.domain.clock import SHANGHAI

__all__ = ["DEFAULT", "HTML_LANG", "LANGUAGES", "REGION_CHOICES", "ZH", "Translator"]

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

ZH: dict[str, str] = {
    # layout
    "Public credit information": "公共信用信息",
    "Skip to main content": "跳到正文",
    "Main navigation": "主导航",
    "Search": "查询",
    "Announcements": "公示公告",
    "Live board": "实时公示屏",
    "Statistics": "统计",
    "Only information that the law makes public is shown here: records of public categories while their "
    "publicity period runs, never retracted or repaired ones. Identity numbers, personal names and plates "
    "are masked.": "本站仅展示依法应当公开的信息：公开类别的记录仅在公示期内展示，已撤销或已信用修复的记录不予展示。"
    "身份证号码、个人姓名和车牌号均经脱敏处理。",
    "Signed ledger checkpoint": "已签名的账本检查点",
    "API documentation": "接口文档",
    # search
    "Name, unified social credit code or resident identity number": "名称、统一社会信用代码或居民身份证号码",
    "Part of a name is enough; small typos are tolerated. A resident identity number finds a person only "
    "when something about them is public, and is never shown back in full.": "输入部分名称即可，可容忍个别错字。"
    "居民身份证号码仅在该人有依法公开的信息时才能查到，且不会完整回显。",
    "Look up the public credit information of an organization, or what the law makes public about a person: "
    "lists of dishonest judgment debtors, administrative penalties, honours.": "查询法人和其他组织的公共信用信息，"
    "或依法公开的个人信息：失信被执行人名单、行政处罚、荣誉表彰等。",
    "Latest announcements": "最新公示",
    "All announcements ({n})": "全部公示（{n} 条）",
    "Nothing is published at the moment.": "目前没有公示信息。",
    "Search: {q}": "查询：{q}",
    "{n} results": "共 {n} 条结果",
    "Many names match: only the best 200 candidates were examined. Type more of the name.": "匹配的名称过多，"
    "仅检查了最相关的 200 个候选。请输入更完整的名称。",
    "Identifier": "证件号码",
    "Kind": "主体类型",
    "Region": "地区",
    "Grade": "信用等级",
    "Public records": "公开记录",
    "Result pages": "结果分页",
    "No public information was found. Persons appear only while something about them is public; "
    "organizations appear once a provider has reported on them.": "未找到公开信息。个人仅在有依法公开的信息时"
    "才会出现；组织在有信息提供单位报送其信息后出现。",
    "Previous": "上一页",
    "Next": "下一页",
    # errors
    "Too many requests": "请求过于频繁",
    "Too many requests from your address. Please wait {n} seconds and try again.": "您的地址请求过于频繁，"
    "请等待 {n} 秒后重试。",
    "Invalid request": "请求无效",
    "The request is not valid.": "请求无效。",
    "Enter a name, a unified social credit code or a resident identity number (at most 100 characters). An "
    "18-character identifier must be valid.": "请输入名称、统一社会信用代码或居民身份证号码（不超过 100 个字符）。"
    "18 位证件号码必须有效。",
    "The identifier is not valid.": "证件号码无效。",
    "The page number must be a whole number from 1.": "页码必须是从 1 开始的整数。",
    "The region must be 2, 4 or 6 digits of an administrative division code.": "地区必须是 2、4 或 6 位行政区划代码。",
    "Unknown category.": "未知的信息类别。",
    "The dates must be written YYYY-MM-DD, and 'from' must not be after 'to'.": "日期格式应为 YYYY-MM-DD，"
    "且起始日期不得晚于截止日期。",
    "No public information": "无公开信息",
    "There is no public information about this subject. Persons appear only while the law makes something "
    "about them public.": "没有该主体的公开信息。个人仅在有依法公开的信息时才会显示。",
    # subject
    "Unified social credit code": "统一社会信用代码",
    "Resident identity number": "居民身份证号码",
    "Registration authority": "登记管理部门",
    "Type": "机构类别",
    "Catalog": "适用目录",
    "As of": "数据日期",
    "For a person, only what the law makes public is shown: entries on black lists such as the list of "
    "dishonest judgment debtors, and records of public categories during their publicity period. The "
    "identity number and name are masked.": "对个人仅展示依法公开的信息：失信被执行人名单等黑名单，以及公示期内的"
    "公开类别记录。身份证号码和姓名均已脱敏。",
    "Credit grade": "信用等级",
    "score {n}": "信用分 {n}",
    "No catalog scores this region today.": "目前没有适用于该地区的评价目录。",
    "Score over the last 12 months": "近 12 个月信用分",
    "Score at the end of each month and today": "每月月末及今日的信用分",
    "Score history as a table": "以表格查看信用分历史",
    "Date": "日期",
    "Score": "信用分",
    "Lists": "名单",
    "Since": "列入日期",
    "Ends": "届满日期",
    "while the grade holds": "保持该等级期间",
    "Legal basis": "法律依据",
    "Measures": "措施",
    "Not on any list.": "未列入任何名单。",
    "Warning information": "警示信息",
    "Good information": "良好信息",
    "None published.": "无公示信息。",
    "Information": "信息",
    "Provider": "提供单位",
    "Case number": "案号",
    "Points": "分值",
    "Shown until": "公示截止",
    "ends {date}": "{date} 届满",
    "{n} measures": "{n} 项措施",
    "{n} points": "{n} 分",
    # announcements
    "Published violations, newest first. Each stays here only during its publicity period.": "已公示的失信"
    "和违法信息，按时间由新到旧排列。每条信息仅在公示期内展示。",
    "All regions": "全部地区",
    "Category": "信息类别",
    "All categories": "全部类别",
    "From": "起始日期",
    "To": "截止日期",
    "Filter": "筛选",
    "Reset": "重置",
    "{n} announcements, page {p} of {pages}": "共 {n} 条公示，第 {p} / {pages} 页",
    "Subject": "主体",
    "Cause": "事由",
    "Measure": "处理措施",
    "Announcement pages": "公示分页",
    "No announcement matches these filters.": "没有符合筛选条件的公示。",
    # board
    "Live board of published violations": "违法失信信息实时公示屏",
    "Live": "实时",
    "Reconnecting…": "正在重新连接…",
    "Connecting…": "正在连接…",
    "ledger size": "账本条数",
    "Time": "时间",
    "Plate or subject": "车牌或主体",
    "Newest published violations": "最新公示的违法失信信息",
    "This board updates itself with JavaScript; without it, reload the page.": "本公示屏通过 JavaScript 自动更新；"
    "如未启用，请刷新页面。",
    # stats
    "Aggregates only: no subject is named. As of {date}.": "仅为汇总数据，不涉及任何具体主体。数据日期：{date}。",
    "Persons": "个人",
    "Organizations": "组织",
    "Records": "记录",
    "Records shown publicly": "公示中的记录",
    "Ledger entries": "账本条目",
    "Records by provider and month": "各提供单位每月报送记录数",
    "Records received in each of the last 12 months, stacked by provider": "近 12 个月每月报送的记录数，按提供单位堆叠",
    "Subjects per grade": "各信用等级主体数",
    "How many persons and organizations hold each grade today": "当前各信用等级的个人和组织数量",
    "List sizes": "名单规模",
    "How many subjects are on each list today": "当前各名单中的主体数量",
    "Checks answered by activity": "按活动统计的核查次数",
    "Relying parties' checks, by activity and decision": "信用信息使用单位的核查次数，按活动和结果统计",
    "Allowed": "允许",
    "Restricted": "限制",
    "Activity": "活动",
    "List": "名单",
    "As a table": "以表格查看",
    "No subject is on a list.": "目前没有主体被列入名单。",
    "No check has been answered yet.": "尚未答复任何核查。",
    "Federation": "联网汇聚",
    "Nodes this platform pulls from: what was verified, how far behind, the last error.": "本平台汇聚的上游节点：已验证的位置、滞后程度和最近的错误。",
    "Node": "节点",
    "Pulls": "汇聚内容",
    "Verified up to": "已验证至",
    "Behind (entries)": "滞后（条目）",
    "Behind (seconds)": "滞后（秒）",
    "Errors": "错误次数",
    "Last error": "最近错误",
    "ledger": "账本",
    "lists": "名单",
    # signed-in pages: sign-in, my report, review queues
    "Sign in": "登录",
    "Sign out": "退出登录",
    "Session token": "会话令牌",
    "Continue": "继续",
    "the subject": "信用主体本人",
    "You are signed in as {who}.": "您已作为 {who} 登录。",
    "Signed in as {who}": "已登录：{who}",
    "Paste the session token you were given. It is kept only in a cookie of this browser that scripts cannot "
    "read, and is sent only to this site.": "请粘贴您获得的会话令牌。令牌仅保存在本浏览器中脚本无法读取的 Cookie 里，"
    "且只发送给本站。",
    "This session token is not valid, has expired or was revoked. Only session tokens of subjects, reviewers, "
    "administrators and auditors sign in here.": "该会话令牌无效、已过期或已被撤销。此处仅接受信用主体、复核人员、"
    "管理员和审计人员的会话令牌。",
    "Not allowed": "无权访问",
    "This page is not for the account you signed in with.": "您登录的账户无权访问此页面。",
    "My credit report": "我的信用报告",
    "Download as PDF": "下载 PDF 版",
    "Lists and measures": "名单与措施",
    "no fixed end": "无固定届满日期",
    "What would lift it": "如何解除",
    "All records about me": "关于我的全部记录",
    "Every record a provider submitted about you, public or not. A disputed record has an open objection.": "信息"
    "提供单位报送的关于您的全部记录，无论是否公开。标注“有异议”的记录有尚未办结的异议申请。",
    "Record": "记录",
    "Stops counting on": "不再计分日期",
    "Published": "是否公示",
    "yes, until {date}": "是，至 {date}",
    "no": "否",
    "Repair possible from": "可申请信用修复日期",
    "Status": "状态",
    "disputed": "有异议",
    "retracted": "已撤销",
    "repaired on {date}": "{date} 已修复",
    "No record about you is on file.": "没有关于您的记录。",
    "How the score is made": "信用分的构成",
    "Objections and appeals": "异议与复核申请",
    "due by {date}": "办理期限 {date}",
    "overdue": "已逾期",
    "Decision": "处理结果",
    "None.": "无。",
    "To object to a record, use POST /api/v1/me/objections with the record id and your reason; a reviewer "
    "decides by the due date.": "如对记录有异议，请通过 POST /api/v1/me/objections 提交记录编号和理由；"
    "复核人员将在办理期限内作出决定。",
    "Credit repair applications": "信用修复申请",
    "Notices": "告知书",
    "Placed on {list} from {date}": "列入{list}（自 {date} 起）",
    "Who read my data": "谁查询了我的信息",
    "Who": "查询者",
    "What": "查询内容",
    "Why": "查询事由",
    "Nobody has read your non-public data.": "尚无他人查询您的非公开信息。",
    "Review queues": "待办事项",
    "Read a subject's full report": "查阅信用主体的完整报告",
    "Open objections": "待处理的异议",
    "{n} overdue": "{n} 件已逾期",
    "Due by": "办理期限",
    "Case": "案件编号",
    "Reason": "理由",
    "appeal": "复核",
    "Pending credit repair applications": "待处理的信用修复申请",
    "Manual list actions awaiting a second administrator": "待另一名管理员审批的人工名单操作",
    "Action": "操作",
    "Proposed by": "提出人",
    "until {date}": "至 {date}",
    "Decisions are made through the API (see the API documentation); every decision is a ledger entry naming "
    "its decider.": "处理决定通过接口作出（见接口文档）；每项决定都记入账本并载明决定人。",
    "A subject's full report": "信用主体的完整报告",
    "State why you read this report (at most 500 characters).": "请说明查阅该报告的事由（不超过 500 个字符）。",
    "Reason for reading": "查阅事由",
    "The subject sees in its access log that you read its report, when, and the reason you give.": "信用主体"
    "可在其查询记录中看到您查阅了其报告、查阅时间以及您填写的事由。",
    "Read": "查阅",
    "My report": "我的报告",
    # case states, actions and roles (shown by the signed-in pages)
    "open": "待处理",
    "upheld": "异议成立",
    "rejected": "异议不成立",
    "applied": "已申请",
    "confirmed": "已确认履行",
    "approved": "已批准",
    "refused": "未批准",
    "pending": "待审批",
    "add": "列入",
    "remove": "移出",
    "subject": "信用主体",
    "reviewer": "复核人员",
    "admin": "管理员",
    "auditor": "审计人员",
    "party": "信用信息使用单位",
    "provider": "信息提供单位",
    # vocabulary
    "person": "个人",
    "organization": "法人和其他组织",
    "black": "黑名单",
    "red": "红名单",
}

CATEGORIES_ZH = {
    "DISHONEST_JUDGMENT_DEBTOR": "被人民法院列为失信被执行人",
    "CONTRACT_BREACH_JUDGMENT": "经生效判决认定违反合同约定",
    "TAX_ARREARS": "欠税公告（逾期未缴税款）",
    "MAJOR_TAX_VIOLATION": "重大税收违法失信主体（偷税、骗税、虚开发票）",
    "ADMIN_PENALTY_MINOR": "适用简易程序当场作出的行政处罚（警告或小额罚款）",
    "ADMIN_PENALTY_GENERAL": "一般行政处罚（如较大数额罚款、没收违法所得）",
    "ADMIN_PENALTY_SERIOUS": "严重行政处罚（如吊销许可证件、巨额罚款、禁止从业）",
    "BUSINESS_ABNORMAL_OPERATION": "列入经营异常名录",
    "SERIOUS_ILLEGAL_DISHONEST_ENTERPRISE": "列入市场监管领域严重违法失信名单",
    "SOCIAL_INSURANCE_ARREARS": "用人单位未按时足额缴纳社会保险费",
    "HOUSING_FUND_ARREARS": "用人单位逾期未缴存住房公积金",
    "A_GRADE_TAXPAYER": "年度纳税信用评价为 A 级",
    "ADMIN_LICENCE_GRANTED": "取得行政许可",
    "NATIONAL_HONOUR": "获得国家勋章、国家荣誉称号或国家级表彰",
    "COMMENDATION": "受到省部级表彰",
    "VOLUNTEER_SERVICE": "经认证的志愿服务",
    "BLOOD_DONATION": "无偿献血",
    "UTILITY_ARREARS_JUDGMENT": "经法院或仲裁机构认定拖欠公共事业费",
    "CONTRACT_NONPERFORMANCE": "未履行借贷、信用、担保、租赁或保险合同义务",
    "BANK_LOAN_ARREARS": "银行贷款或信用卡逾期（每个还款周期一条）",
    "COUNTERFEIT_GOODS": "因生产、销售假冒伪劣商品受到处罚",
    "LATE_UTILITY_FEES": "逾期缴纳水、气、电、暖等公共事业费",
    "UTILITY_THEFT": "窃用自来水、天然气、电力或公共供暖",
    "UTILITY_EQUIPMENT_DESTRUCTION": "破坏供水、供气、供暖、电力或通信设施并造成后果",
    "TRAFFIC_VIOLATION": "道路交通违法受到警告或罚款",
    "DRUNK_DRIVING": "因饮酒后驾驶或醉酒驾驶受到处罚",
    "VOLUNTEER_SERVICE_OUTSTANDING": "被组织单位或民政部门评为优秀志愿者",
    "CHARITABLE_DONATION": "通过依法登记的慈善组织进行慈善捐赠",
    "MODEL_WORKER_HONOUR": "获得市级以上劳动模范等荣誉称号",
    "TRAFFIC_HONKING": "在禁止鸣喇叭区域鸣喇叭",
    "METRO_FARE_EVASION": "乘坐上海轨道交通逃票",
    "ILLEGAL_PARKING": "违法停车受到交警处罚",
    "RENTAL_HOUSING_VIOLATION": "违反住房租赁管理规定受到处罚（如违规分隔、群租）",
    "WASTE_SORTING_VIOLATION": "违反生活垃圾分类管理规定受到处罚",
}
LISTS_ZH = {
    "DISHONEST_JUDGMENT_DEBTOR": "失信被执行人名单",
    "SERIOUS_DISHONEST_ENTITY": "严重失信主体名单",
    "A_GRADE_TAXPAYERS": "A 级纳税人名单",
    "HONOR_ROLL": "诚信红榜（AAA 级）",
    "GOOD_VOLUNTEER_RECORD": "优秀志愿服务记录名单",
}
MEASURES_ZH = {
    "NO_AIR_TRAVEL": "不得乘坐飞机",
    "NO_HSR_FIRST_CLASS": "不得乘坐 G 字头动车组列车全部座位及其他动车组列车一等以上座位",
    "NO_SOFT_SLEEPER": "不得乘坐列车软卧",
    "NO_STAR_HOTEL": "不得在星级以上宾馆、夜总会、高尔夫球场等场所进行高消费",
    "NO_LUXURY_PURCHASE": "不得购买不动产、新建扩建或高档装修房屋、购买非经营必需车辆",
    "NO_LUXURY_OFFICE_RENTAL": "不得租赁高档写字楼、宾馆、公寓等场所办公",
    "NO_LEISURE_TRAVEL": "不得旅游、度假",
    "NO_PRIVATE_SCHOOL_FEES": "不得支付子女就读高收费私立学校",
    "NO_HIGH_PREMIUM_INSURANCE": "不得支付高额保费购买保险理财产品",
    "NO_GOVERNMENT_PROCUREMENT": "不得作为供应商参加政府采购",
    "NO_PUBLIC_BIDDING": "限制参与公共资源交易招标投标",
    "NO_FISCAL_SUBSIDY": "限制申请政府财政补贴和扶持资金",
    "FAST_TRACK_TAX": "办税绿色通道和专人服务",
    "INVOICE_ON_DEMAND": "增值税专用发票按需领用（一次最多领用 3 个月用量）",
    "DEPOSIT_FREE_RENTAL": "公共租赁免押金（如公共自行车、图书借阅）",
    "GREEN_CHANNEL": "行政审批绿色通道（优先办理、容缺受理）",
    "CULTURE_VENUE_DISCOUNT": "公共文化体育场馆免费或优惠入场",
}
ACTIVITIES = {
    "air_travel": ("乘坐飞机", "Air travel"),
    "rail_first_class": ("乘坐高铁及一等座", "High-speed and first-class rail"),
    "rail_soft_sleeper": ("乘坐列车软卧", "Soft-sleeper rail"),
    "star_hotel": ("星级酒店等高消费", "Star hotels and similar"),
    "luxury_purchase": ("购房购车等", "Property and vehicle purchases"),
    "luxury_office_rental": ("租赁高档办公场所", "High-end office rental"),
    "leisure_travel": ("旅游度假", "Leisure travel"),
    "private_school": ("高收费私立学校", "High-fee private schools"),
    "high_premium_insurance": ("高额保费保险", "High-premium insurance"),
    "government_procurement": ("政府采购", "Government procurement"),
    "public_bidding": ("公共资源交易", "Public bidding"),
    "fiscal_subsidy": ("财政补贴", "Fiscal subsidies"),
    "tax_service": ("办税服务", "Tax services"),
    "invoice_supply": ("发票领用", "Invoice supply"),
    "culture_venue": ("文化体育场馆", "Cultural and sports venues"),
    "rental_deposit": ("公共租赁押金", "Rental deposits"),
    "administrative_approval": ("行政审批", "Administrative approvals"),
}

# GB/T 2260: provinces (first 2 digits) and the divisions the demo population uses.
PROVINCES = {
    "11": ("北京市", "Beijing"),
    "12": ("天津市", "Tianjin"),
    "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"),
    "15": ("内蒙古自治区", "Inner Mongolia"),
    "21": ("辽宁省", "Liaoning"),
    "22": ("吉林省", "Jilin"),
    "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"),
    "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"),
    "36": ("江西省", "Jiangxi"),
    "37": ("山东省", "Shandong"),
    "41": ("河南省", "Henan"),
    "42": ("湖北省", "Hubei"),
    "43": ("湖南省", "Hunan"),
    "44": ("广东省", "Guangdong"),
    "45": ("广西壮族自治区", "Guangxi"),
    "46": ("海南省", "Hainan"),
    "50": ("重庆市", "Chongqing"),
    "51": ("四川省", "Sichuan"),
    "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"),
    "54": ("西藏自治区", "Tibet"),
    "61": ("陕西省", "Shaanxi"),
    "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"),
    "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"),
    "71": ("台湾省", "Taiwan"),
    "81": ("香港特别行政区", "Hong Kong"),
    "82": ("澳门特别行政区", "Macao"),
}
DIVISIONS = {
    "310100": ("上海市", "Shanghai"),
    "310101": ("上海市黄浦区", "Huangpu District, Shanghai"),
    "310104": ("上海市徐汇区", "Xuhui District, Shanghai"),
    "310114": ("上海市嘉定区", "Jiading District, Shanghai"),
    "310115": ("上海市浦东新区", "Pudong New Area, Shanghai"),
    "371000": ("山东省威海市", "Weihai, Shandong"),
    "371082": ("山东省荣成市", "Rongcheng, Shandong"),
    "110100": ("北京市", "Beijing"),
    "110105": ("北京市朝阳区", "Chaoyang District, Beijing"),
    "440300": ("广东省深圳市", "Shenzhen, Guangdong"),
    "440305": ("深圳市南山区", "Nanshan District, Shenzhen"),
    "330100": ("浙江省杭州市", "Hangzhou, Zhejiang"),
    "330106": ("杭州市西湖区", "Xihu District, Hangzhou"),
}
# Region filter choices on the announcements page: provinces and cities of the shipped catalogs.
REGION_CHOICES = ["11", "31", "310101", "310104", "310114", "310115", "33", "37", "371082", "44"]

AUTHORITIES = {
    "1": ("机构编制", "Institutional establishment"),
    "2": ("外交", "Foreign affairs"),
    "3": ("司法行政", "Justice"),
    "4": ("文化", "Culture"),
    "5": ("民政", "Civil affairs"),
    "6": ("旅游", "Tourism"),
    "7": ("宗教", "Religious affairs"),
    "8": ("工会", "Trade unions"),
    "9": ("市场监督管理", "Market regulation"),
    "A": ("中央军委改革和编制办公室", "Central Military Commission"),
    "N": ("农业农村", "Agriculture"),
    "Y": ("其他", "Other"),
}
ORG_TYPES = {
    "11": ("机关", "Government organ"),
    "12": ("事业单位", "Public institution"),
    "13": ("群众团体", "Mass organization"),
    "51": ("社会团体", "Social organization"),
    "52": ("民办非企业单位", "Private non-enterprise unit"),
    "53": ("基金会", "Foundation"),
    "91": ("企业", "Enterprise"),
    "92": ("个体工商户", "Individual business"),
    "93": ("农民专业合作社", "Farmers' cooperative"),
}


class Translator:
    """All text of one page language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self.zh = self.lang == "zh"

    def gettext(self, text: str, **params: Any) -> str:
        out = ZH.get(text, text) if self.zh else text
        return out.format(**params) if params else out

    def _pair(self, table: dict[str, tuple[str, str]], key: str, fallback: str) -> str:
        pair = table.get(key)
        return fallback if pair is None else pair[0 if self.zh else 1]

    def category_title(self, code: str, title: str) -> str:
        return CATEGORIES_ZH.get(code, title) if self.zh else title

    def list_title(self, code: str, title: str) -> str:
        return LISTS_ZH.get(code, title) if self.zh else title

    def measure_title(self, code: str, title: str) -> str:
        return MEASURES_ZH.get(code, title) if self.zh else title

    def activity(self, name: str) -> str:
        return self._pair(ACTIVITIES, name, name)

    def kind(self, kind: str) -> str:
        return self.gettext(kind)

    def badge(self, kind: str) -> str:
        return self.gettext(kind)

    def region(self, code: str | None) -> str:
        if not code:
            return "—"
        name = self._pair(DIVISIONS, code, "")
        if not name:
            name = self._pair(PROVINCES, code[:2], "")
            if name and len(code) > 2 and code[2:].strip("0"):
                name = f"{name} ({code})"
        return name or code

    @staticmethod
    def clock(timestamp: str) -> str:
        """A ledger timestamp (UTC) as the time of day in Asia/Shanghai, ``HH:MM:SS``."""
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return timestamp
        return moment.astimezone(SHANGHAI).strftime("%H:%M:%S")

    def authority(self, char: str) -> str:
        return self._pair(AUTHORITIES, char, char)

    def org_type(self, chars: str) -> str:
        return self._pair(ORG_TYPES, chars, chars)


# Why a page refused its input, by field (English keys, translated like any UI string).
FIELD_MESSAGES = {
    "q": "Enter a name, a unified social credit code or a resident identity number (at most 100 characters). "
    "An 18-character identifier must be valid.",
    "subject_id": "The identifier is not valid.",
    "page": "The page number must be a whole number from 1.",
    "region": "The region must be 2, 4 or 6 digits of an administrative division code.",
    "category": "Unknown category.",
    "from": "The dates must be written YYYY-MM-DD, and 'from' must not be after 'to'.",
    "to": "The dates must be written YYYY-MM-DD, and 'from' must not be after 'to'.",
}
